import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createKeyFile } from '../../src/crypto/key-file.js'
import { generateNodeKey } from '../../src/crypto/keys.js'
import { MEMBER_QUOTA, STRANGER_QUOTA } from '../../src/ledger/admission/constants.js'
import { formatMeshDefinition, MESH_FILE_VERSION } from '../../src/membership/index.js'
import { buildNodeConfig } from '../../src/node/config.js'
import { startNode } from '../../src/node/daemon.js'
import { ensureHome } from '../../src/node/home/home.js'
import { throwawayAuthor } from '../helpers/hostile-peer.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

describe('the node wires the ledger\'s standing hook to its mesh', () => {
  const teardown = useTeardown()

  it('members (vouched for in the log, or on a --trust DIR list) get members\' quotas; strangers, revoked and unvouched keys do not', async () => {
    const home = await tempDir(teardown, 'buildhaus-standing-')
    const self = generateNodeKey()
    await createKeyFile((await ensureHome(home)).key, self)
    const mesh = join(home, 'lab.json')
    await writeFile(mesh, formatMeshDefinition({ v: MESH_FILE_VERSION, name: 'lab', founders: [self.publicHex], admit: 1 }))
    const listed = generateNodeKey().publicHex
    const trust = join(home, 'trusted')
    await mkdir(trust)
    await writeFile(join(trust, 'listed.pub'), `${listed}\n`)
    const config = buildNodeConfig({
      home, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: false, platform: [], api: '127.0.0.1:0', slots: '0', mesh, trust
    }, {})
    const node = await startNode(config, { writeApiFile: false, warn: () => {} })
    teardown(async () => { await node.stop() })

    const volunteerKey = throwawayAuthor()
    const volunteer = volunteerKey.hex
    const stranger = generateNodeKey().publicHex
    // The founder itself, and a key on the reader's own trust list.
    expect(node.admission.ownQuota()).toEqual(MEMBER_QUOTA)
    expect(node.admission.standingOf(listed)).toBe('member')
    expect(node.admission.quotaOf(stranger)).toEqual(STRANGER_QUOTA)
    expect(node.admission.standingOf(volunteer)).toBe('stranger')

    // A vouch in the log admits the volunteer at once (admit 1): the next entry it sends is charged as a member's.
    await node.ledger.append('vouch', { member: volunteer })
    expect(node.membership.isMember(volunteer)).toBe(true)
    expect(node.admission.standingOf(volunteer)).toBe('member')
    expect(node.admission.quotaOf(volunteer)).toEqual(MEMBER_QUOTA)
    expect(node.admission.standingOf(stranger)).toBe('stranger')

    // A revoke bars the key (docs/FORMAT.md §8.6): a stranger from its next entry on, vouched for or not.
    const revoke = volunteerKey.next({ type: 'revoke', clock: Date.now(), time: Date.now(), body: {} })
    expect((await node.ledger.ingest([revoke.line])).accepted.map((e) => e.id)).toEqual([revoke.id])
    expect(node.membership.isMember(volunteer)).toBe(false)
    expect(node.admission.standingOf(volunteer)).toBe('stranger')

    // A member unvouched is a stranger again.
    const other = generateNodeKey().publicHex
    await node.ledger.append('vouch', { member: other })
    expect(node.admission.standingOf(other)).toBe('member')
    await node.ledger.append('unvouch', { member: other })
    expect(node.admission.standingOf(other)).toBe('stranger')
  })
})
