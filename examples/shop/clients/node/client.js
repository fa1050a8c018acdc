#!/usr/bin/env node
// Call the shop over mTLS from the host, the way a Node.js service would.
//
// It reads its credentials from the files MTLS_CERT, MTLS_KEY and MTLS_CA name,
// the same variables the services in the containers get, and never turns
// verification off.
//
//   MTLS_CERT=.devmtls/cert MTLS_KEY=.devmtls/key MTLS_CA=.devmtls/ca \
//     node clients/node/client.js https://localhost:8443/orders
'use strict';
const fs = require('fs');
const https = require('https');

const url = process.argv[2] || 'https://localhost:8443/orders';
for (const v of ['MTLS_CERT', 'MTLS_KEY', 'MTLS_CA']) {
  if (!process.env[v]) {
    console.error(`node client: ${v} is not set; run me with devmtls's variables`);
    process.exit(2);
  }
}
const options = {
  cert: fs.readFileSync(process.env.MTLS_CERT),
  key: fs.readFileSync(process.env.MTLS_KEY),
  ca: fs.readFileSync(process.env.MTLS_CA),
  minVersion: 'TLSv1.2',
  timeout: 10000,
};
const req = https.get(url, options, (res) => {
  let data = '';
  res.setEncoding('utf8');
  res.on('data', (chunk) => { data += chunk; });
  res.on('end', () => {
    if (res.statusCode !== 200) {
      console.error(`node client: ${url}: HTTP ${res.statusCode}: ${data.trim()}`);
      process.exit(1);
    }
    const body = JSON.parse(data);
    const orders = body.orders || [];
    console.log(`node client: ${orders.length} orders over mTLS via ${url} (served by ${body.served_by}, which saw client '${body.client}')`);
    for (const o of orders) {
      console.log(`  ${o.id}: ${o.qty} x ${o.sku} (available: ${o.stock ? o.stock.available : '?'})`);
    }
  });
});
req.on('timeout', () => req.destroy(new Error('timed out')));
req.on('error', (err) => {
  console.error(`node client: ${url}: ${err.message}`);
  process.exit(1);
});
