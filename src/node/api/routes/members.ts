import type { FastifyInstance } from 'fastify'
import type { BarredRecord, CandidateRecord, MemberRecord } from '../../../membership/index.js'
import { sendError } from '../errors.js'

/** GET /api/members: the mesh, whom the node counts, and who is a member by whose vouches. */
export interface MembersResponse {
  mesh: {
    name: string
    /** The definition file the node read. */
    file: string
    source: 'flag' | 'home' | 'shipped'
    fingerprint: string
    founders: string[]
    admit: number
    closed: boolean
  }
  /** Whom this node's verdicts and scheduling count: the members, everyone, or its own trust list. */
  trust: 'members' | 'everyone' | 'list'
  self: {
    author: string
    member: boolean
    founder: boolean
    /** Members whose vouch for this node is live. */
    vouchers: string[]
    /** More vouches this node needs to be admitted (0 once a member). */
    needed: number
  }
  members: MemberRecord[]
  candidates: CandidateRecord[]
  barred: BarredRecord[]
}

/** POST /api/members/vouch and /unvouch: the entry written, and membership after it. */
export interface VouchResponse {
  entry: string
  type: 'vouch' | 'unvouch'
  member: string
  /** Whether the key is a member now. */
  admitted: boolean
  /** Whether this node is a member (a non-member's vouch counts only once it is admitted). */
  selfMember: boolean
  members: MembersResponse
}

export interface MembersContext {
  membership (): MembersResponse
  /** Every vouch, unvouch and revoke entry held, as signed: what a reader needs to recompute membership itself. */
  membershipEntries (): AsyncIterable<{ id: string, entry: Record<string, unknown> }>
  /** Write a vouch (`vouch` true) or an unvouch for `member`. */
  vouch (member: string, vouch: boolean): Promise<VouchResponse>
}

const KEY = /^[0-9a-f]{64}$/

export function registerMemberRoutes (app: FastifyInstance, context: MembersContext): void {
  app.get('/api/members', async () => context.membership())

  // The entries behind membership (vouch, unvouch, revoke), as signed, for `fetch`, `release` and anyone who recomputes it.
  app.get('/api/members/entries', async () => {
    const entries: Array<Record<string, unknown>> = []
    for await (const { id, entry } of context.membershipEntries()) entries.push({ id, ...entry })
    return { entries }
  })

  for (const type of ['vouch', 'unvouch'] as const) {
    app.post<{ Body: { member?: unknown } | undefined }>(`/api/members/${type}`, async (request, reply) => {
      const member = request.body?.member
      if (typeof member !== 'string' || !KEY.test(member)) {
        return sendError(reply, 400, 'BadRequest', `give the key to ${type} for as {"member": "<64 lower-case hex digits>"} (\`buildhaus-node ${type} KEY\` also takes a peer id)`)
      }
      if (member === context.membership().self.author) {
        return sendError(reply, 400, 'BadRequest', `a key cannot ${type} for itself; ask other members to vouch for this node`)
      }
      return await context.vouch(member, type === 'vouch')
    })
  }
}
