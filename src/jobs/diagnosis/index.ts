export { compareArtifacts, type ArtifactFile, type CompareOptions, type DiffReport } from './compare.js'
export { findOnPath } from './diffoscope.js'
