// storefront: the example's Node.js service. It calls the orders service over
// mTLS with the credentials MTLS_CERT, MTLS_KEY and MTLS_CA point at.
"use strict";
const fs = require("fs");
const https = require("https");

for (const name of ["MTLS_CERT", "MTLS_KEY", "MTLS_CA"]) {
  if (!process.env[name]) {
    console.error(`storefront: ${name} is not set; run it with \`devmtls exec -- node storefront.js\``);
    process.exit(1);
  }
}
const url = new URL(process.env.ORDERS_URL || "https://localhost:8444/");
const req = https.get(
  {
    host: url.hostname,
    port: url.port,
    path: url.pathname,
    cert: fs.readFileSync(process.env.MTLS_CERT),
    key: fs.readFileSync(process.env.MTLS_KEY),
    ca: fs.readFileSync(process.env.MTLS_CA),
    minVersion: "TLSv1.2",
    timeout: 10000,
  },
  (res) => {
    let body = "";
    res.on("data", (d) => (body += d));
    res.on("end", () => {
      if (res.statusCode !== 200) {
        console.error(`storefront: orders answered ${res.statusCode}: ${body}`);
        process.exit(1);
      }
      const orders = JSON.parse(body);
      console.log(`storefront -> orders (as ${orders.client}) -> inventory (as ${orders.inventory.client}): ${JSON.stringify(orders.inventory.items)}`);
    });
  },
);
req.on("error", (err) => {
  console.error(`storefront: ${err.message}`);
  process.exit(1);
});
