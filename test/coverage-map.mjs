// Coverage is measured for the package's sources; examples and build output are not the product.
export default function coverageMap () {
  return 'lib/**/*.ts'
}
