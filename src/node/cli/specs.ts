import { DEFAULT_LISTEN_ADDRESS } from '../../gossip/constants.js'
import { DEFAULT_TIMEOUT_S } from '../../jobs/constants.js'
import { DEFAULT_ADMIT, MESH_FILE_NAME } from '../../membership/constants.js'
import { DEFAULT_API_HOST, DEFAULT_API_PORT } from '../api-defaults.js'
import { apiOption, defineSpec, homeOption, jsonOption, type OptionTable } from './command.js'

/**
 * Every command's name, summary, arguments and options: all that parsing
 * and help read. Each command's code is in its own module (commands/),
 * loaded only when it runs (commands/index.ts), so this module imports
 * nothing but the option helpers and light constant modules: `--help`,
 * `--version` and every command start without loading the node.
 */

/** The reader's own trust policy, for commands that judge results offline (read by trust-options.ts). */
export const trustOptions = {
  mesh: { type: 'string', placeholder: 'FILE', description: 'count the members of this mesh, recomputed from the log\'s vouches (default: mesh.json in $BUILDHAUS_HOME or the default home, else the project\'s keys/mesh.json)' },
  trust: { type: 'string', placeholder: 'DIR|everyone', description: 'count only builders whose public keys are in DIR (one file per key: NAME.pub with 64 hex digits, or NAME.pub.pem; see keys/README.md) instead of the members; `everyone` counts every key (unsafe: throwaway keys forge verdicts)' },
  quorum: { type: 'string', placeholder: 'N', description: 'agreeing distinct builders a platform needs (default: its replica count)' }
} as const satisfies OptionTable

/** Where the `env` commands find the environment store. */
const storeOptions = {
  ...homeOption,
  'environment-dir': { type: 'string', placeholder: 'DIR', description: 'the environment store (default: /var/cache/buildhaus/environments as root, else <home>/environments)' },
  'environment-cache': { type: 'string', placeholder: 'MB', description: 'the cache\'s size bound (default 32768)' }
} as const satisfies OptionTable

/** `fetch` and `release` download the same checked files. */
const fetchOptions = {
  output: { type: 'string', short: 'o', placeholder: 'DIR', description: 'where to write (a new or empty directory)' },
  platform: { type: 'string', placeholder: 'SEL', description: 'only this platform\'s artifacts' },
  ...trustOptions,
  ...apiOption,
  ...homeOption,
  ...jsonOption
} as const satisfies OptionTable

export const demoSpec = defineSpec({
  name: ['demo'],
  summary: 'see the whole idea on one machine: start a small local mesh, submit an example job, watch it get verified, then keep the mesh and its dashboard up until Ctrl-C',
  options: {
    nodes: { type: 'string', placeholder: 'N', description: 'how many nodes to start (default 3, at most 8)' },
    example: { type: 'string', placeholder: 'DIR', description: 'the job to submit (default: the bundled examples/hello)' },
    sandbox: { type: 'string', placeholder: 'bubblewrap|none', description: 'how the demo\'s builds are isolated (default: bubblewrap; without it, none, for the demo\'s own jobs only)' },
    exit: { type: 'boolean', description: 'stop once the job has its verdict instead of running until Ctrl-C' },
    ...jsonOption
  }
})

export const initSpec = defineSpec({
  name: ['init'],
  summary: 'create this node\'s identity (Ed25519 key) and API token in its home',
  options: {
    ...homeOption,
    ...jsonOption
  }
})

export const joinSpec = defineSpec({
  name: ['join'],
  summary: 'start this node: join the mesh and serve the API until stopped (Ctrl-C, SIGTERM)',
  options: {
    ...homeOption,
    bootstrap: { type: 'string', multiple: true, placeholder: 'MULTIADDR', description: 'a peer to join through, ending in /p2p/<peer id> (default: the peers listed in keys/bootstrap.txt)' },
    mdns: { type: 'boolean', default: true, description: 'do not look for peers on the local network by multicast DNS (on by default)' },
    listen: { type: 'string', multiple: true, placeholder: 'MULTIADDR', description: `where to accept peers (default ${DEFAULT_LISTEN_ADDRESS}: every interface, port 4710)` },
    platform: { type: 'string', multiple: true, placeholder: 'LABEL', description: 'a platform label to offer (default: detected, e.g. linux-x64 and debian-12)' },
    slots: { type: 'string', placeholder: 'N', description: 'builds to run at once (default: half the CPUs, at least 1; 0 joins without building)' },
    api: { type: 'string', placeholder: 'HOST:PORT', description: `serve the HTTP API here (default ${DEFAULT_API_HOST}:${DEFAULT_API_PORT}, this machine only; port 0 picks a free one)` },
    sandbox: { type: 'string', placeholder: 'bubblewrap|none', description: 'how builds are isolated (default bubblewrap; none runs jobs unconfined)' },
    mesh: { type: 'string', placeholder: 'FILE', description: 'the mesh to join, as a mesh definition (default: mesh.json in the home, else the project\'s keys/mesh.json)' },
    trust: { type: 'string', placeholder: 'DIR|everyone', description: 'count only the builders whose public keys are in DIR instead of the mesh\'s members; `everyone` counts every key (unsafe on an open network); default: the members' },
    quorum: { type: 'string', placeholder: 'N', description: 'agreeing distinct builders a platform needs (default: its replica count)' },
    'blob-cache': { type: 'string', placeholder: 'MB', description: 'how much the blob store (sources, logs, artifacts) may hold (default 4096)' },
    environment: { type: 'string', multiple: true, placeholder: 'NAME', description: 'offer builds in this environment, e.g. debian-12 (made from Debian\'s archive at start if missing; see `env`)' },
    'environment-dir': { type: 'string', placeholder: 'DIR', description: 'where environments are kept (default: /var/cache/buildhaus/environments as root, else <home>/environments; nodes may share one)' },
    'environment-cache': { type: 'string', placeholder: 'MB', description: 'how much the environments may take, least recently used removed first (default 32768)' },
    relay: { type: 'string', placeholder: 'auto|on|off', description: 'relay for peers behind NAT (default auto: only while this node has a public address; see docs/NETWORK.md)' },
    upnp: { type: 'boolean', description: 'ask the router to forward the p2p port (UPnP or NAT-PMP), so peers can dial this node directly' },
    announce: { type: 'string', multiple: true, placeholder: 'MULTIADDR', description: 'a public address others can dial this node at, e.g. /ip4/203.0.113.7/tcp/4710 when the router forwards that port' },
    'swarm-key': { type: 'string', placeholder: 'FILE', description: 'join a private mesh: only nodes holding this key (made by `buildhaus-node swarm-key`) can connect' },
    poll: { type: 'boolean', default: true, description: 'do not poll watches (this node never fetches upstream releases; others are designated instead)' },
    'watch-allow': { type: 'string', multiple: true, placeholder: 'CIDR', description: 'let watches reach this address or range although it is loopback or private (e.g. 127.0.0.1 for a registry on this machine)' },
    'watch-min-interval': { type: 'string', placeholder: 'SECONDS', description: 'poll one watch at most this often, whatever it asks (default 300)' },
    'retain-days': { type: 'string', placeholder: 'DAYS', description: 'keep the artifacts of verified platforms this node built pinned, outside the cache bound, this long (default 90; 0: never pin)' },
    json: { type: 'boolean', description: 'print one JSON line when ready ({"event":"ready",…}) and one when stopped' }
  }
})

export const submitSpec = defineSpec({
  name: ['submit'],
  summary: 'submit the job in DIR (default .) to the mesh through the local node',
  args: '[DIR]',
  positionals: { min: 0, max: 1 },
  options: {
    ...apiOption,
    ...homeOption,
    platform: { type: 'string', multiple: true, placeholder: 'SEL', description: 'build on this platform instead of the spec\'s (a label, or labels joined by +)' },
    replicas: { type: 'string', placeholder: 'N', description: 'independent builders wanted per platform (default: the spec\'s, else 2)' },
    timeout: { type: 'string', placeholder: 'SECONDS', description: `the job's wall-clock limit (default: the spec's timeout, else ${DEFAULT_TIMEOUT_S} s)` },
    wait: { type: 'boolean', description: 'follow the job until every platform has a verdict (exit 0 verified, 1 failed or mismatch, 3 no verdict in time)' },
    'wait-timeout': { type: 'string', placeholder: 'SECONDS', description: 'how long --wait waits for the verdict (default: the job\'s timeout plus a margin for queueing)' },
    ...jsonOption
  }
})

export const statusSpec = defineSpec({
  name: ['status'],
  summary: 'show one job: verdict per platform, each builder\'s result and hashes, logs and diagnoses (--follow: stream the running builds\' logs until the verdict)',
  args: 'JOB',
  positionals: { min: 1, max: 1 },
  options: {
    ...apiOption,
    ...homeOption,
    follow: { type: 'boolean', short: 'f', description: 'print the running builds\' logs as they grow (lines prefixed with platform and builder) and progress on stderr, until the job has a verdict' },
    platform: { type: 'string', placeholder: 'SEL', description: 'with --follow: only this platform\'s builds' },
    ...jsonOption
  }
})

export const jobsSpec = defineSpec({
  name: ['jobs'],
  summary: 'list jobs, newest first, with their verdict per platform',
  options: {
    ...apiOption,
    ...homeOption,
    limit: { type: 'string', placeholder: 'N', description: 'show at most N jobs (default 50; 0 for all)' },
    verdict: { type: 'string', placeholder: 'VERDICT', description: 'only jobs with this verdict (pending, verified, failed, mismatch, unmatched, cancelled)' },
    ...jsonOption
  }
})

export const cancelSpec = defineSpec({
  name: ['cancel'],
  summary: 'cancel a job you submitted (through the node that submitted it)',
  args: 'JOB',
  positionals: { min: 1, max: 1 },
  options: {
    ...apiOption,
    ...homeOption,
    reason: { type: 'string', placeholder: 'TEXT', description: 'why, for the log' },
    ...jsonOption
  }
})

export const peersSpec = defineSpec({
  name: ['peers'],
  summary: 'list the live members of the mesh as the running node sees them',
  options: {
    ...apiOption,
    ...homeOption,
    ...jsonOption
  }
})

export const meshInitSpec = defineSpec({
  name: ['mesh', 'init'],
  summary: 'found a mesh: write a mesh definition whose founders are this node (and any --founder), for every node to join with --mesh',
  options: {
    ...homeOption,
    name: { type: 'string', placeholder: 'NAME', description: 'the mesh\'s name, a lower-case word (default: the home\'s directory name, else "my-mesh")' },
    founder: { type: 'string', multiple: true, placeholder: 'KEY', description: 'another founding key: 64 hex digits (`init --json` prints a node\'s "author") or a peer id' },
    self: { type: 'boolean', default: true, description: 'do not make this node a founder' },
    admit: { type: 'string', placeholder: 'N', description: `members' vouches that admit a key (default ${DEFAULT_ADMIT}, or the number of founders if fewer)` },
    closed: { type: 'boolean', description: 'ask nodes to refuse connections from keys that are not members' },
    out: { type: 'string', short: 'o', placeholder: 'FILE', description: `where to write it (default: ${MESH_FILE_NAME} in the node's home, which \`join\` reads)` },
    force: { type: 'boolean', description: 'overwrite an existing file' },
    ...jsonOption
  }
})

export const membersSpec = defineSpec({
  name: ['members'],
  summary: 'who is a member of this node\'s mesh, by whose vouches, and who waits for vouches',
  options: {
    ...apiOption,
    ...homeOption,
    ...jsonOption
  }
})

/** `vouch` and `unvouch` take the same arguments; only what they do differs. */
function vouchSpecOf (type: 'vouch' | 'unvouch', summary: string) {
  return defineSpec({
    name: [type],
    summary,
    args: 'KEY',
    positionals: { min: 1, max: 1 },
    options: {
      ...apiOption,
      ...homeOption,
      ...jsonOption
    }
  })
}

export const vouchSpec = vouchSpecOf('vouch', 'vouch for a key as a member of this node\'s mesh (a key with enough members\' vouches is admitted)')
export const unvouchSpec = vouchSpecOf('unvouch', 'withdraw this node\'s vouch for a key (it stays a member only while enough other members vouch)')

export const logExportSpec = defineSpec({
  name: ['log', 'export'],
  summary: 'write the whole signed log as NDJSON (one entry a line, in an order where every chain verifies), from the running node or, if none runs, from the home\'s store',
  options: {
    ...apiOption,
    ...homeOption,
    output: { type: 'string', short: 'o', placeholder: 'FILE', description: 'write to FILE (must not exist) instead of standard output' }
  }
})

export const auditSpec = defineSpec({
  name: ['audit'],
  summary: 'verify an exported log offline (signatures, ids, chains, forks), recompute the mesh\'s membership from its vouches and every job\'s verdicts under your trust policy; exit 0 when the log is valid, 1 when it is not',
  details: [
    'Exit codes:',
    '  0  the log is valid. An author proven to equivocate (two entries at one seq) is',
    '     reported with both entries of the fork, and nothing it wrote is believed; what',
    '     an author signed after revoking its key is reported and ignored, and a revoked',
    '     key is never a member. The export itself is intact.',
    '  1  some line or chain fails its checks: a changed byte, a bad signature, a',
    '     missing or reordered line, a chain whose clock does not rise (docs/FORMAT.md §9).',
    '  2  usage error: no such file, an unknown option, an unreadable trust directory.'
  ].join('\n'),
  args: 'FILE',
  positionals: { min: 1, max: 1 },
  options: {
    ...trustOptions,
    verbose: { type: 'boolean', short: 'v', description: 'show every job\'s builders and hashes, not only those that are not verified' },
    slice: { type: 'boolean', description: 'the file is a slice of a log (a release\'s log.ndjson): chains may skip entries; every id, link and signature present is still checked (with `--signatures chain`, a signature per run of linked entries)' },
    signatures: { type: 'string', placeholder: 'every|chain', description: 'which signatures to check: `every` line\'s own (the default), or `chain`: only what the chains\' links do not vouch for (each run of linked entries is proven by its last entry, which signs the ids before it; more than twice as fast on a large log), and every line\'s once one fails. A line whose own signature is damaged passes `chain` if a later entry signs its id (docs/FORMAT.md §9)' },
    ...jsonOption
  }
})

export const verifySpec = defineSpec({
  name: ['verify'],
  summary: 'which builders built exactly this file, for which job and platform, and is it verified under your policy? (exit 0 verified, 1 not)',
  args: 'FILE',
  positionals: { min: 1, max: 1 },
  options: {
    job: { type: 'string', placeholder: 'ID', description: 'only look in this job' },
    log: { type: 'string', placeholder: 'EXPORT', description: 'judge offline from an exported log (with --mesh/--trust/--quorum) instead of asking the node' },
    slice: { type: 'boolean', description: 'with --log: the file is a slice of a log (a release\'s log.ndjson), whose chains skip entries' },
    signatures: { type: 'string', placeholder: 'every|chain', description: 'with --log: check `every` line\'s signature (the default) or only those the chains\' links do not vouch for (`chain`, as `audit --signatures chain`)' },
    ...trustOptions,
    ...apiOption,
    ...homeOption,
    ...jsonOption
  }
})

export const envListSpec = defineSpec({
  name: ['env', 'list'],
  summary: 'list the environments on this machine: name, hash, packages, size, last use',
  options: { ...storeOptions, ...jsonOption }
})

export const envCreateSpec = defineSpec({
  name: ['env', 'create'],
  summary: 'make an environment from Debian\'s archive (debian-11, debian-12, debian-13, …) with mmdebstrap; shows progress',
  args: 'NAME',
  positionals: { min: 1, max: 1 },
  options: {
    ...storeOptions,
    ...jsonOption,
    refresh: { type: 'boolean', description: 'make it anew from the archive as it is now, even if it exists (the old one stays until gc)' },
    mirror: { type: 'string', placeholder: 'URL', description: 'the Debian archive to use (default: $BUILDHAUS_DEBIAN_MIRROR, else this machine\'s apt sources)' }
  }
})

export const envImportSpec = defineSpec({
  name: ['env', 'import'],
  summary: 'import an environment from a container image archive (OCI layout tar, or `docker save` output)',
  args: 'NAME FILE',
  positionals: { min: 2, max: 2 },
  options: { ...storeOptions, ...jsonOption }
})

export const envRemoveSpec = defineSpec({
  name: ['env', 'remove'],
  summary: 'remove an environment (by name, or by hash for a derived one); refused while a build uses it',
  args: 'NAME|HASH',
  positionals: { min: 1, max: 1 },
  options: { ...storeOptions }
})

export const envGcSpec = defineSpec({
  name: ['env', 'gc'],
  summary: 'remove the least recently used environments until the rest fit --environment-cache (never one in use)',
  options: { ...storeOptions, ...jsonOption }
})

export const envShowSpec = defineSpec({
  name: ['env', 'show'],
  summary: 'print an environment\'s manifest: the blob whose sha256 results record (--buildinfo: as a .buildinfo field)',
  args: 'NAME|HASH',
  positionals: { min: 1, max: 1 },
  options: {
    ...storeOptions,
    buildinfo: { type: 'boolean', description: 'print the packages as Debian\'s .buildinfo `Installed-Build-Depends` field' }
  }
})

export const swarmKeySpec = defineSpec({
  name: ['swarm-key'],
  summary: 'make a new pre-shared key for a private mesh (give every node a copy, then join with --swarm-key FILE)',
  args: 'FILE',
  positionals: { min: 1, max: 1 },
  options: {
    ...jsonOption
  }
})

export const attestSpec = defineSpec({
  name: ['attest'],
  summary: 'the provenance of a job\'s verified platforms: in-toto Statements (SLSA provenance v1) in DSSE envelopes signed by each agreeing builder, one JSON line each (an .intoto.jsonl)',
  args: 'JOB',
  positionals: { min: 1, max: 1 },
  options: {
    output: { type: 'string', short: 'o', placeholder: 'FILE', description: 'write the envelopes to FILE (must not exist) instead of standard output' },
    platform: { type: 'string', placeholder: 'SEL', description: 'only this platform' },
    log: { type: 'string', placeholder: 'EXPORT', description: 'work offline from an exported log (or a release\'s log.ndjson), with --trust/--quorum, instead of asking the node' },
    ...trustOptions,
    ...apiOption,
    ...homeOption,
    ...jsonOption
  }
})

export const fetchSpec = defineSpec({
  name: ['fetch'],
  summary: 'download a job\'s verified artifacts (JOB, or JOB/PATH for some of them), checking every entry\'s signature, the verdict under your trust policy, and every file\'s sha256',
  args: 'JOB[/PATH]',
  positionals: { min: 1, max: 1 },
  options: fetchOptions
})

export const releaseSpec = defineSpec({
  name: ['release'],
  summary: 'write a job\'s release to DIR: its verified artifacts, their provenance (DSSE envelopes) and the slice of the log that proves them, checkable offline with `audit --slice` and `verify --log --slice`',
  args: 'JOB',
  positionals: { min: 1, max: 1 },
  options: fetchOptions
})

export const watchAddSpec = defineSpec({
  name: ['watch', 'add'],
  summary: 'have every new release built: watch a git repository\'s tags, an npm package, a PyPI project or a Debian source package (recorded in the log; the mesh polls it)',
  args: 'git URL | npm PACKAGE | pypi PROJECT | debian SOURCE',
  positionals: { min: 2, max: 2 },
  options: {
    ref: { type: 'string', placeholder: 'PATTERN', description: 'git: which refs are releases (default refs/tags/*; e.g. \'refs/tags/v*\')' },
    suite: { type: 'string', placeholder: 'SUITE', description: 'debian: the suite, e.g. bookworm (required)' },
    registry: { type: 'string', placeholder: 'URL', description: 'npm: the registry (default: the one npm is configured with on this machine)' },
    index: { type: 'string', placeholder: 'URL', description: 'pypi: the index root serving /pypi/PROJECT/json (default: pip\'s configured index without /simple)' },
    archive: { type: 'string', placeholder: 'URL', description: 'debian: the archive (default: the one this machine\'s apt sources name for the suite)' },
    job: { type: 'string', placeholder: 'FILE|DIR', description: 'the job for each release, a buildhaus.json whose name and steps may use {version} and {name} (default: the buildhaus.json inside each release)' },
    platform: { type: 'string', multiple: true, placeholder: 'SEL', description: 'with --job: build on these platforms instead of the template\'s' },
    replicas: { type: 'string', placeholder: 'N', description: 'with --job: builders per platform' },
    interval: { type: 'string', placeholder: 'SECONDS', description: 'poll this often (default 900; nodes poll no more often than their --watch-min-interval, 300 s by default)' },
    ...apiOption,
    ...homeOption,
    ...jsonOption
  }
})

export const watchListSpec = defineSpec({
  name: ['watch', 'list'],
  summary: 'list the watches: what each polls, the releases built, when polling last succeeded and why it last failed',
  options: {
    removed: { type: 'boolean', description: 'include removed watches' },
    ...apiOption,
    ...homeOption,
    ...jsonOption
  }
})

export const watchRemoveSpec = defineSpec({
  name: ['watch', 'remove'],
  summary: 'stop a watch (only the node that added it can); its jobs stay',
  args: 'WATCH',
  positionals: { min: 1, max: 1 },
  options: { ...apiOption, ...homeOption, ...jsonOption }
})

export const webhookAddSpec = defineSpec({
  name: ['webhook', 'add'],
  summary: 'post every final verdict to URL as signed JSON (docs/WEBHOOKS.md); prints the hook\'s secret',
  args: 'URL',
  positionals: { min: 1, max: 1 },
  options: {
    ...homeOption,
    secret: { type: 'string', placeholder: 'SECRET', description: 'the HMAC key receivers check signatures with (at least 16 characters; default: 32 random bytes in hex)' },
    scope: { type: 'string', placeholder: 'mine|all', description: 'mine (default): jobs this node submitted or that its watches triggered; all: every job it sees decided' },
    ...jsonOption
  }
})

export const webhookListSpec = defineSpec({
  name: ['webhook', 'list'],
  summary: 'list the webhooks of the node in --home (secrets not shown)',
  options: { ...homeOption, ...jsonOption }
})

export const webhookRemoveSpec = defineSpec({
  name: ['webhook', 'remove'],
  summary: 'stop posting verdicts to URL',
  args: 'URL',
  positionals: { min: 1, max: 1 },
  options: { ...homeOption }
})
