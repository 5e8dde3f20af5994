/** The membership layer's public surface: the mesh definition, the vouch types, the fold and the live view. */
export * from './constants.js'
export * from './errors.js'
export * from './definition.js'
export * from './bodies.js'
export * from './fold.js'
export * from './service.js'
export { VouchBook } from './vouch-book.js'
