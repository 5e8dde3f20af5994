import { createServer } from 'node:http'

/**
 * A Debian archive on loopback whose InRelease is unsigned text and whose
 * other files are empty: only gpgv would object to it. Its URL, for
 * `debianUpstream` (with an AddressPolicy allowing 127.0.0.1).
 */
export async function unsignedArchive (teardown: (fn: () => unknown) => void): Promise<string> {
  const server = createServer((request, response) => { response.end(request.url?.endsWith('/InRelease') === true ? 'Origin: test\nSHA256:\n' : '') })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  teardown(async () => { await new Promise((resolve) => server.close(resolve)) })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('the archive stand-in has no port')
  return `http://127.0.0.1:${address.port}/debian`
}
