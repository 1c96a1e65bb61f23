/** The bytes an SSE stream's lines are told apart by (WHATWG HTML, "Server-sent events"): read, never decoded. */
export const LF = 0x0a
export const CR = 0x0d
export const SPACE = 0x20
export const COLON = 0x3a
export const LOWER_D = 0x64
export const LOWER_E = 0x65
export const LOWER_I = 0x69
export const LOWER_R = 0x72
