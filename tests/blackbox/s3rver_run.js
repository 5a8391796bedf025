// SPDX-License-Identifier: MIT
// Runs s3rver (the third-party S3 server the s3 sink is tested against) for a test:
//   node s3rver_run.js <data-dir> <port|0> <ready-file> [bucket...]
// Listens on 127.0.0.1, serves virtual-hosted requests for <bucket>.s3.localhost, creates the
// buckets (idempotent, so a restart on the same directory keeps the objects), then writes the
// bound port to <ready-file> atomically. The test polls that file with a deadline.
'use strict';
const fs = require('fs');
const path = require('path');
const S3rver = require(path.join(__dirname, 'node_modules', 's3rver'));

const [dir, port, ready, ...buckets] = process.argv.slice(2);
if (!dir || port === undefined || !ready) {
  console.error('usage: node s3rver_run.js <data-dir> <port> <ready-file> [bucket...]');
  process.exit(2);
}
const server = new S3rver({
  address: '127.0.0.1',
  port: Number(port),
  directory: dir,
  silent: true,
  serviceEndpoint: 'localhost',
  configureBuckets: buckets.map(name => ({ name })),
});
server.run().then(
  addr => {
    fs.writeFileSync(ready + '.tmp', String(addr.port));
    fs.renameSync(ready + '.tmp', ready);
  },
  err => {
    console.error('s3rver failed to start:', err);
    process.exit(1);
  },
);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
