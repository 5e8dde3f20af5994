import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { JobNotFoundError, JobSpecError, NotSubmitterError, SourceNotFoundError } from '../../src/jobs/index.js'
import { registerErrorHandlers } from '../../src/node/api/errors.js'
import { BuildhausError } from '../../src/util/errors.js'

/** Each error class answers with its status and its stable name, through the one shared handler. */
describe('API errors', () => {
  it('carry their status from one table, and a plain BuildhausError is a 400', async () => {
    const app = Fastify({ logger: false })
    registerErrorHandlers(app)
    const errors: Record<string, Error> = {
      'not-submitter': new NotSubmitterError('only the node that submitted job x can cancel it'),
      'no-job': new JobNotFoundError('this node knows no job x'),
      'no-source': new SourceNotFoundError('the source is not in this node\'s blob store'),
      spec: new JobSpecError('buildhaus.json: steps is required'),
      other: new BuildhausError('something the caller can fix'),
      bug: new Error('a bug')
    }
    app.get<{ Params: { which: string } }>('/throw/:which', async (request) => { throw errors[request.params.which]! })
    await app.ready()
    const answer = async (which: string): Promise<[number, string]> => {
      const response = await app.inject({ method: 'GET', url: `/throw/${which}` })
      return [response.statusCode, (response.json() as { error: { name: string } }).error.name]
    }
    expect(await answer('not-submitter')).toEqual([403, 'NotSubmitterError'])
    expect(await answer('no-job')).toEqual([404, 'JobNotFound'])
    expect(await answer('no-source')).toEqual([409, 'SourceNotFoundError'])
    expect(await answer('spec')).toEqual([400, 'JobSpecError'])
    expect(await answer('other')).toEqual([400, 'BuildhausError'])
    expect(await answer('bug')).toEqual([500, 'InternalError'])
    await app.close()
  })
})
