import fs from 'node:fs'
const rss = () => { const s = fs.readFileSync('/proc/self/status','utf8'); const g = k => Number(new RegExp(k+':\\s+(\\d+)').exec(s)[1]); return [g('VmRSS'), g('RssAnon'), g('RssFile')] }
const [base, add] = [process.argv[2], process.argv[3]]
for (const s of base.split(',')) await import(s)
await new Promise(r => setTimeout(r, 200)); globalThis.gc(); globalThis.gc()
const h0 = process.memoryUsage().heapUsed, r0 = rss()
for (const s of add.split(',')) await import(s)
await new Promise(r => setTimeout(r, 200)); globalThis.gc(); globalThis.gc()
const h1 = process.memoryUsage().heapUsed, r1 = rss()
console.log(add.padEnd(50), 'heap +' + ((h1 - h0) / 1048576).toFixed(2), 'MB  file +' + ((r1[2]-r0[2])/1024).toFixed(1), 'base heap', (h0/1048576).toFixed(1))
