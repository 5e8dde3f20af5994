import { createPublicKey, verify as rawVerify } from 'node:crypto'
import { multiaddr } from '@multiformats/multiaddr'
import nacl from 'tweetnacl'
import { describe, expect, it } from 'vitest'
import { generateNodeKey, parsePublicKey } from '../../src/crypto/keys.js'
import { createSigner, verifySignature, verifySignatureNacl } from '../../src/crypto/sign.js'
import { isStrictPublicKey, isStrictSignature, SMALL_ORDER_ENCODINGS } from '../../src/crypto/strict.js'
import { jobEntryRules } from '../../src/jobs/index.js'
import { auditLines } from '../../src/ledger/audit.js'
import { EntryCodec, signedMessage } from '../../src/ledger/entry.js'
import { decodeForkProof } from '../../src/ledger/forks.js'
import { VerifyPool } from '../../src/ledger/verify-pool.js'
import { buildNodeConfig } from '../../src/node/config.js'
import { startNode } from '../../src/node/daemon.js'
import { waitFor } from '../../src/util/wait.js'
import { startNodeProcess } from '../helpers/cluster.js'
import { forgeEntryWithSignature, hostilePeer, IDENTITY_KEY, IDENTITY_SIGNATURE, identityPointKey, throwawayAuthor } from '../helpers/hostile-peer.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { jobBody } from '../jobs/helpers.js'
import { openTestStore } from '../ledger/helpers.js'

/**
 * Issue 12, attack 9: Ed25519 was not strict. An author key that is the
 * identity point, with R = identity and S = 0, "signs" every message under
 * OpenSSL and tweetnacl alike, and a non-canonical key encoding (y ≥ p) was
 * accepted too. Every verify path now refuses what libsodium's
 * crypto_sign_verify_detached refuses (src/crypto/strict.ts).
 */

const P = (1n << 255n) - 19n
const L = (1n << 252n) + 27742317777372353535851937790883648493n
const SPKI = Buffer.from('302a300506032b6570032100', 'hex')
const codec = new EntryCodec(jobEntryRules)

function le (value: bigint): Buffer {
  const out = Buffer.alloc(32)
  for (let i = 0, v = value; i < 32; i++, v >>= 8n) out[i] = Number(v & 0xffn)
  return out
}

function leValue (bytes: Uint8Array): bigint {
  let v = 0n
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!)
  return v
}

/** What OpenSSL alone (node:crypto, no checks in front) says. */
function openssl (publicKey: Buffer, message: Uint8Array, signature: Buffer): boolean {
  try {
    return rawVerify(null, message, createPublicKey({ key: Buffer.concat([SPKI, publicKey]), format: 'der', type: 'spki' }), signature)
  } catch {
    return false
  }
}

/** The forged entry: a well-formed job by the identity key, "signed" by R = identity, S = 0. */
function identityJob (author = IDENTITY_KEY): ReturnType<typeof forgeEntryWithSignature> {
  return forgeEntryWithSignature({ author, seq: 0, prev: null, clock: 1, time: Date.now(), type: 'job', body: jobBody({ name: 'signed by nobody' }) as unknown as Record<string, unknown> }, IDENTITY_SIGNATURE)
}

// Affine edwards25519 arithmetic, written here independently of strict.ts, to check its blacklist.
const D = ((-121665n * modPow(121666n, P - 2n)) % P + P) % P
function modPow (b: bigint, e: bigint): bigint {
  let r = 1n
  b %= P
  for (; e > 0n; e >>= 1n, b = (b * b) % P) if ((e & 1n) === 1n) r = (r * b) % P
  return r
}
function add ([x1, y1]: [bigint, bigint], [x2, y2]: [bigint, bigint]): [bigint, bigint] {
  const t = (D * x1 * x2 % P) * y1 * y2 % P
  const x3 = (x1 * y2 + y1 * x2) % P * modPow((1n + t) % P, P - 2n) % P
  const y3 = ((y1 * y2 + x1 * x2) % P + P) % P * modPow(((1n - t) % P + P) % P, P - 2n) % P
  return [x3, y3]
}
/** Decode (RFC 8032 §5.1.3, but without the canonical check), or undefined when not on the curve. */
function decodePoint (bytes: Buffer): [bigint, bigint] | undefined {
  const sign = bytes[31]! >> 7
  const y = leValue(Buffer.concat([bytes.subarray(0, 31), Buffer.from([bytes[31]! & 0x7f])])) % P
  const u = (y * y - 1n + P) % P
  const v = (D * y * y + 1n) % P
  const x2 = u * modPow(v, P - 2n) % P
  let x = modPow(x2, (P + 3n) / 8n)
  if ((x * x - x2) % P !== 0n) x = x * modPow(2n, (P - 1n) / 4n) % P
  if (((x * x - x2) % P + P) % P !== 0n) return undefined
  if (Number(x & 1n) !== sign) x = (P - x) % P
  return [x, y]
}
function hasSmallOrder (bytes: Buffer): boolean {
  const point = decodePoint(bytes)
  if (point === undefined) return false
  let q = point
  for (let i = 0; i < 3; i++) q = add(q, q)
  return q[0] === 0n && q[1] === 1n
}

describe('attack 9: non-strict Ed25519', { timeout: 180_000 }, () => {
  const teardown = useTeardown()
  const anything = Buffer.from('any message at all')

  it('the identity key with R = identity and S = 0 passes OpenSSL and tweetnacl alone; every buildhaus verify path refuses it', async () => {
    const key = Buffer.from(IDENTITY_KEY, 'hex')
    const sig = Buffer.from(IDENTITY_SIGNATURE, 'hex')
    // The attack, as it stood: both libraries accept the "signature" on any message.
    expect(openssl(key, anything, sig)).toBe(true)
    expect(nacl.sign.detached.verify(anything, sig, key)).toBe(true)
    // The fix, on every path: node:crypto, tweetnacl, the worker pool, the codec, the store, audit, fork proofs.
    expect(verifySignature(IDENTITY_KEY, anything, sig)).toBe(false)
    expect(verifySignatureNacl(key, anything, sig)).toBe(false)
    const forged = identityJob()
    expect(openssl(key, signedMessage(forged.id), sig)).toBe(true)
    expect(() => codec.decode(forged.line)).toThrow(expect.objectContaining({ reason: 'bad-signature' }))
    const pool = VerifyPool.create({ size: 1 })
    teardown(async () => { await pool.close() })
    const many = Array.from({ length: 80 }, () => ({ author: IDENTITY_KEY, id: forged.id, sig: IDENTITY_SIGNATURE }))
    expect(await pool.verifyBatch(many)).toEqual(many.map(() => false))
    const store = await openTestStore(teardown, { codec, verifier: pool })
    const ingested = await store.ingest([forged.line])
    expect(ingested.accepted).toHaveLength(0)
    expect(ingested.rejected.map((r) => r.reason)).toEqual(['bad-signature'])
    const audit = await auditLines([forged.line], codec, { verifier: pool })
    expect(audit.valid).toBe(false)
    expect(audit.problems.map((p) => p.kind)).toEqual(['bad-signature'])
    // Enough lines for the audit's batches to reach the workers.
    const auditMany = await auditLines(Array.from({ length: 80 }, () => forged.line), codec, { verifier: pool })
    expect(auditMany.entries).toBe(0)
    expect(auditMany.problems.map((p) => p.kind)).toEqual(many.map(() => 'bad-signature'))
    const other = forgeEntryWithSignature({ ...(forged.entry as { seq: number, prev: null, clock: number, time: number, type: string, body: Record<string, unknown> }), author: IDENTITY_KEY, time: 1 }, IDENTITY_SIGNATURE)
    expect(() => decodeForkProof(codec, `${forged.line}\n${other.line}`)).toThrow(/invalid/)
    // A trust list cannot hold it either.
    expect(() => parsePublicKey(IDENTITY_KEY)).toThrow(/small order/)
  })

  it('non-canonical encodings: a key or R with y ≥ p, and S ≥ L (tweetnacl alone takes S + L)', () => {
    // The identity written as p + 1: OpenSSL reduces it and accepts; strict verification refuses the encoding.
    const nonCanonicalIdentity = le(P + 1n)
    const sig = Buffer.from(IDENTITY_SIGNATURE, 'hex')
    expect(openssl(nonCanonicalIdentity, anything, sig)).toBe(true)
    expect(verifySignature(nonCanonicalIdentity.toString('hex'), anything, sig)).toBe(false)
    expect(isStrictPublicKey(nonCanonicalIdentity)).toBe(false)
    // y = p exactly, and y = 2^255 - 1 (all ones): not canonical whatever they decode to.
    expect(isStrictPublicKey(le(P))).toBe(false)
    expect(isStrictPublicKey(Buffer.from('ff'.repeat(31) + '7f', 'hex'))).toBe(false)
    expect(isStrictSignature(Buffer.concat([le(P + 3n), Buffer.alloc(32)]))).toBe(false)
    // S + L: the same signature again, malleated.
    const key = generateNodeKey()
    const good = Buffer.from(createSigner(key).sign(anything))
    const malleated = Buffer.concat([good.subarray(0, 32), le(leValue(good.subarray(32)) + L)])
    expect(nacl.sign.detached.verify(anything, malleated, key.publicKey)).toBe(true)
    expect(verifySignatureNacl(key.publicKey, anything, malleated)).toBe(false)
    expect(verifySignature(key.publicHex, anything, malleated)).toBe(false)
    expect(isStrictSignature(Buffer.concat([good.subarray(0, 32), le(L)]))).toBe(false)
    expect(isStrictSignature(Buffer.concat([good.subarray(0, 32), le(L - 1n)]))).toBe(true)
    // Honest keys and signatures still verify, on both paths.
    expect(verifySignature(key.publicHex, anything, good)).toBe(true)
    expect(verifySignatureNacl(key.publicKey, anything, good)).toBe(true)
  })

  it('refuses exactly the small-order points: every encoding of the 8-torsion (checked by curve arithmetic here), and no honest key', () => {
    expect(SMALL_ORDER_ENCODINGS).toBe(7)
    // Walk every y below 64 and around p, and the two order-8 y values, each with both sign bits.
    const candidates: bigint[] = []
    for (let y = 0n; y < 64n; y++) candidates.push(y, P - y, P + y)
    const order8 = decodeEncodings()
    candidates.push(...order8)
    let small = 0
    for (const y of candidates) {
      if (y >= 1n << 255n) continue
      for (const sign of [0, 1]) {
        const bytes = le(y)
        bytes[31] = bytes[31]! | (sign << 7)
        const expectedRefused = y >= P || hasSmallOrder(bytes) || (y % P <= 1n && sign === 1)
        if (hasSmallOrder(bytes)) small++
        expect(isStrictPublicKey(bytes), `y=${y} sign=${sign}`).toBe(!expectedRefused)
        expect(isStrictSignature(Buffer.concat([bytes, Buffer.alloc(32)])), `R: y=${y} sign=${sign}`).toBe(!expectedRefused)
      }
    }
    // 8 points, some with two encodings (the sign bit of x = 0 is ignored by a lax decoder): at least 8 found.
    expect(small).toBeGreaterThanOrEqual(8)
    for (let i = 0; i < 200; i++) expect(isStrictPublicKey(generateNodeKey().publicKey)).toBe(true)
  })

  it('a live node refuses identity-key entries on gossip and in sync, and stores the honest entry sent after them', async () => {
    const node = await startNodeProcess(teardown, { args: ['--slots', '0'] })
    const peer = await hostilePeer(teardown)
    await peer.connect(node.address)
    const forged = identityJob()
    const nonCanonical = identityJob(le(P + 1n).toString('hex'))
    await peer.publishEntry(forged)
    await peer.publishEntry(nonCanonical)
    const pushed = await peer.pushBySync(node.address, [forged.line])
    expect(pushed.aborted).toBe(true)
    // An honest stranger's job, after them: once it is stored, the forged ones have had their chance.
    const honest = throwawayAuthor().next({ clock: 1, time: Date.now(), type: 'job', body: jobBody({ name: 'honest' }) as unknown as Record<string, unknown> })
    await waitFor(async () => {
      await peer.publishEntry(honest)
      return (await fetch(new URL(`/api/jobs/${honest.id}`, node.apiUrl))).ok
    }, { timeoutMs: 20_000, intervalMs: 500, what: 'the node to store the honest job' })
    const lines = await node.logLines()
    expect(lines.some((line) => line.includes(IDENTITY_KEY))).toBe(false)
    expect(lines.some((line) => line.includes(nonCanonical.entry.author as string))).toBe(false)
    expect((await fetch(new URL(`/api/jobs/${forged.id}`, node.apiUrl))).status).toBe(404)
  })

  it('the connection gater refuses a peer whose key is the identity point, both ways, in an open mesh; an honest stranger still connects', async () => {
    const home = await tempDir(teardown)
    const config = buildNodeConfig({ home, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: false, platform: [], api: '127.0.0.1:0', slots: '0' }, {})
    const node = await startNode(config, { writeApiFile: false, warn: () => {} })
    teardown(async () => { await node.stop() })
    const address = node.listenAddresses()[0]!

    // libp2p's Noise verifies with a lax Ed25519: this peer completes its side of the handshake holding no private key.
    const weak = await hostilePeer(teardown, { privateKey: identityPointKey() })
    expect(isStrictPublicKey(weak.libp2p.peerId.publicKey!.raw)).toBe(false)
    await weak.libp2p.dial(multiaddr(address)).catch(() => {})
    await waitFor(() => node.gater.stats().weakKeys >= 1, { timeoutMs: 10_000, what: 'the gater to refuse the identity-point peer' })
    await waitFor(() => weak.libp2p.getConnections(node.peerId).length === 0, { timeoutMs: 10_000, what: 'the refused connection to close' })
    expect(node.libp2p.getConnections(weak.libp2p.peerId)).toHaveLength(0)

    // Nor does the node dial it.
    const refused = node.gater.stats().weakKeys
    await expect(node.libp2p.dial(weak.libp2p.getMultiaddrs()[0]!)).rejects.toThrow()
    expect(node.gater.stats().weakKeys).toBeGreaterThan(refused)
    expect(node.libp2p.getConnections(weak.libp2p.peerId)).toHaveLength(0)

    // A fresh honest key is a stranger like any other: an open mesh lets it in.
    const honest = await hostilePeer(teardown)
    await honest.libp2p.dial(multiaddr(address))
    await waitFor(() => node.libp2p.getConnections(honest.libp2p.peerId).length > 0, { timeoutMs: 10_000, what: 'the honest stranger to connect' })
    expect(node.gater.stats().nonMembers).toBe(0)
  })
})

/** The y values of the order-8 points, found by curve arithmetic: y with [8](x, y) = O and [4](x, y) ≠ O. */
function decodeEncodings (): bigint[] {
  // Order-8 points satisfy x² = −y² (so that doubling gives y = 0): d·y⁴ + 2·y² − 1 = 0.
  const found: bigint[] = []
  const disc = (1n + D) % P
  let r = modPow(disc, (P + 3n) / 8n)
  if ((r * r - disc) % P !== 0n) r = r * modPow(2n, (P - 1n) / 4n) % P
  for (const y2 of [(P - 1n + r) * modPow(D, P - 2n) % P, ((P - 1n - r) % P + P) * modPow(D, P - 2n) % P]) {
    let y = modPow(y2, (P + 3n) / 8n)
    if ((y * y - y2) % P !== 0n) y = y * modPow(2n, (P - 1n) / 4n) % P
    if (((y * y - y2) % P + P) % P === 0n) found.push(y, P - y)
  }
  return found
}
