// A device publishes its local web UI (and a raw TCP port) through a tunnel server, from
// behind any NAT: only an outgoing connection to the server is needed. The server routes
// http://NAME.<domain>/ by the Host header and gives the TCP service a public port.
//
// Run (in a clone, after `npm ci`): node examples/expose-web-ui.mjs
// It starts its own tunnel server on loopback (TLS with a self-signed certificate pinned
// by its hash). Against the servers of `npm start`: TUNNEL='wss://127.0.0.1:8443#HASH'
// TOKEN='…' node examples/expose-web-ui.mjs (both are in the lines it prints).
import http from 'node:http'
import net from 'node:net'
import { exposeServices } from 'peerlink'
import { TunnelServer, createSelfSignedCertificate } from 'peerlink/server'

let server
let url = process.env.TUNNEL
let token = process.env.TOKEN
if (url === undefined) {
  token = 'example-device-token'
  const { cert, key } = createSelfSignedCertificate({ ipAddresses: ['127.0.0.1'] })
  server = await TunnelServer.listen({
    listeningIps: '127.0.0.1',
    controlPort: 0,
    httpPort: 0,
    domain: 'tunnel.test',
    publicHost: '127.0.0.1',
    allowPorts: '40000-40099',
    tokens: [token],
    tls: { cert, key },
  })
  url = `${server.url}#${server.certificateHash}`
}

// The device's own services, on loopback only.
const ui = http.createServer((req, res) => res.end(`device UI: ${req.method} ${req.url} for ${req.headers['x-forwarded-for']}\n`))
await new Promise((resolve) => ui.listen(0, '127.0.0.1', resolve))
const echo = net.createServer((socket) => socket.pipe(socket))
await new Promise((resolve) => echo.listen(0, '127.0.0.1', resolve))

// The device side: one control WebSocket; reconnects and restores its name by itself.
const device = await exposeServices({ servers: url, token, name: 'my-device', ports: [ui.address().port, echo.address().port], http: ui.address().port })
const endpoints = device.endpoints
console.log('web UI at', endpoints.httpUrl)
for (const port of endpoints.ports) console.log(`local port ${port.local} at ${port.address}`)

if (server !== undefined) {
  // A visitor: the HTTP port with Host: NAME.<domain> (a DNS wildcard does this in production).
  const page = await new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: server.httpPort, path: '/status', headers: { host: 'my-device.tunnel.test' } }, (res) => {
        let body = ''
        res.on('data', (chunk) => (body += chunk))
        res.on('end', () => resolve(`${res.statusCode} ${body.trim()}`))
      })
      .on('error', reject)
  })
  console.log('visitor got:', page)
  // Any TCP protocol works through the device's public port.
  const [host, port] = endpoints.ports.find((p) => p.local === echo.address().port).address.split(':')
  const echoed = await new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), host, () => socket.write('ping over raw TCP'))
    socket.once('data', (data) => {
      resolve(data.toString())
      socket.end()
    })
    socket.once('error', reject)
  })
  console.log('echo service:', echoed)
}

await device.close()
await server?.close()
ui.close()
echo.close()
