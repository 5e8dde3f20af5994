import { connectFromOptions } from '../client.js'
import type { MembersResponse } from '../../api/routes/members.js'
import { ApiRequestError } from '../../errors.js'
import { defineCommand } from '../command.js'
import { membersSpec } from '../specs.js'
import { short } from '../job-format.js'
import { formatTable } from '../table.js'

export const membersCommand = defineCommand({
  ...membersSpec,
  async run (options, _positionals, io) {
    const client = await connectFromOptions(options, io.env)
    const answer = await client.getJson<MembersResponse>('/api/members', { signal: io.signal })
    if (!Array.isArray(answer.members)) throw new ApiRequestError(`${client.url} answered /api/members without a member list; is it a buildhaus node of this version?`)
    io.stdout.write(options.json ? `${JSON.stringify(answer)}\n` : formatMembers(answer))
    return 0
  }
})

export function formatMembers (answer: MembersResponse): string {
  const { mesh, self } = answer
  const out: string[] = []
  out.push(`mesh "${mesh.name}" (${mesh.file}, ${mesh.fingerprint}): ${mesh.founders.length} founder${mesh.founders.length === 1 ? '' : 's'}, ${mesh.admit} vouch${mesh.admit === 1 ? '' : 'es'} from members admit a key${mesh.closed ? ', closed to non-members' : ''}`)
  if (answer.trust !== 'members') out.push(`this node counts ${answer.trust === 'everyone' ? 'EVERYONE (--trust everyone)' : 'its own trust list (--trust DIR)'}, not the members, for verdicts and claims`)
  const rows = answer.members.map((m) => [
    m.key === self.author ? `${m.key} *` : m.key,
    m.founder ? 'founder' : 'member',
    m.vouchers.length === 0 ? '-' : m.vouchers.map(short).join(', ')
  ])
  for (const c of answer.candidates) {
    rows.push([c.key === self.author ? `${c.key} *` : c.key, `waiting (${c.vouchers.length}/${mesh.admit})`, c.vouchers.map(short).join(', ')])
  }
  for (const b of answer.barred) rows.push([b.key, b.reason, '-'])
  if (rows.length > 0) out.push(formatTable(['KEY', 'STANDING', 'VOUCHED FOR BY'], rows).replace(/\n$/, ''))
  out.push(`${answer.members.length} member${answer.members.length === 1 ? '' : 's'}${answer.candidates.length > 0 ? `, ${answer.candidates.length} waiting for vouches` : ''}`)
  if (mesh.founders.length === 0) {
    out.push('this mesh lists no founders yet, so no key is a member: found your own with `buildhaus-node mesh init`')
  } else if (self.member) {
    out.push(`this node (*) is ${self.founder ? 'a founder' : 'a member'}; vouch for a volunteer with \`buildhaus-node vouch KEY\``)
  } else {
    out.push(`this node (*) is not a member: ${self.needed} more member${self.needed === 1 ? '\'s vouch' : 's\' vouches'} needed. Send its key to members and ask them to run:`)
    out.push(`  buildhaus-node vouch ${self.author}`)
  }
  return `${out.join('\n')}\n`
}
