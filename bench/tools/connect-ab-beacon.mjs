// bench/tools/connect-ab.mjs's Beacon (argv HOST; env DIST: the build whose Beacon runs).
const { BeaconServer } = await import(`${process.env.DIST}/server/beacon/index.js`)
const { createSelfSignedCertificate } = await import(`${process.env.DIST}/server/tls.js`)
const host = process.argv[2]
const { cert, key } = createSelfSignedCertificate({ ipAddresses: [host] })
const beacon = await BeaconServer.listen({ host, port: 0, cert, key })
process.send({ beacon: `${host}:${beacon.port}#${beacon.certificateHash}` })
process.on('disconnect', () => beacon.close().finally(() => process.exit(0)))
