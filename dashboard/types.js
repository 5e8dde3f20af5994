// @ts-check
// The API's shapes for the dashboard's JSDoc types, from the node's own
// TypeScript: a change on the server that the pages do not follow fails
// `npm run typecheck`. Types only; nothing here runs.

/** @typedef {import('../src/jobs/view.js').JobView} JobView */
/** @typedef {import('../src/jobs/view.js').PlatformView} PlatformView */
/** @typedef {import('../src/jobs/view.js').ResultView} ResultView */
/** @typedef {import('../src/jobs/bodies.js').StepResult} StepResult */
/** @typedef {import('../src/jobs/bodies.js').BuildEnv} BuildEnv */
/** @typedef {import('../src/jobs/bodies.js').ResultEnvironment} ResultEnvironment */
/** @typedef {import('../src/node/api/routes/live.js').LiveLogEvent} LiveLogEvent */
/** @typedef {import('../src/node/api/routes/live.js').LiveEndEvent} LiveEndEvent */
/** @typedef {import('../src/node/api/routes/jobs.js').JobSummary} JobSummary */
/** @typedef {import('../src/node/api/routes/jobs.js').GridJob} GridJob */
/** @typedef {import('../src/node/api/routes/jobs.js').GridJobsResponse} GridJobsResponse */
/** @typedef {import('../src/node/api/types.js').HealthResponse} HealthResponse */
/** @typedef {import('../src/node/api/types.js').PeerView} PeerView */
/** @typedef {import('../src/node/api/types.js').PeersResponse} PeersResponse */



/**
 * What a page offers the app (all optional): app.js calls these as the URL
 * and the node's live events say.
 * @typedef {object} Page
 * @property {() => void} [focus] move focus to the page's heading
 * @property {() => void} [reload] the job list was (re)loaded
 * @property {(summary: GridJob) => void} [job] a job changed (the store already holds it)
 * @property {() => void} [peers] the membership changed
 * @property {() => void} [fork] a key was caught forking
 * @property {() => void} [resync] events may have been missed: reload
 * @property {() => void} [unmount] the page is left
 */

/**
 * What the app gives every page.
 * @typedef {object} PageContext
 * @property {{ readonly loaded: boolean, list (): GridJob[] }} store
 * @property {(message: string, kind?: 'error' | 'warning') => void} flash
 * @property {(err: unknown, doing: string) => void} reportError
 */
export {}
