// Loaded into the NNI manager (node) through NODE_OPTIONS by nni_snn/experiment/manager_host.py: every TCP server it opens
// without a host, or on all interfaces, listens on NNI_SNN_MANAGER_HOST instead (default 127.0.0.1). NNI 3.0's
// REST server and web UI call app.listen(port) with no host, i.e. on every interface, without authentication.
// Where that host is another address (--host, a remote experiment's nniManagerIp), the server is also reachable
// on 127.0.0.1 at the same port: nnictl, the tuner and local trials reach the manager at localhost.
'use strict';
const net = require('net');

const host = process.env.NNI_SNN_MANAGER_HOST || '127.0.0.1';
const ALL_INTERFACES = new Set(['', '0.0.0.0', '::', '0:0:0:0:0:0:0:0']);
const listen = net.Server.prototype.listen;

function loopbackCompanion(server) {
  // Connections to 127.0.0.1:<port> are handed to the server as if they had reached it directly.
  server.once('listening', () => {
    const address = server.address();
    if (!address) return;  // closed at once
    const companion = net.createServer((socket) => server.emit('connection', socket));
    companion.on('error', (err) => server.emit('error', err));
    listen.call(companion, { port: address.port, host: '127.0.0.1' });
    server.once('close', () => companion.close());
  });
}

net.Server.prototype.listen = function (...args) {
  const first = args[0];
  let options;
  let rest;
  if (first !== null && typeof first === 'object') {
    // An options object; a handle, file descriptor or Unix socket path has no host to choose.
    if (first.path !== undefined || first.handle !== undefined || first._handle !== undefined ||
        first.fd !== undefined || !ALL_INTERFACES.has(first.host || '')) {
      return listen.apply(this, args);
    }
    options = { ...first };
    rest = args.slice(1);
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first)) ||
             first === undefined || typeof first === 'function') {
    // listen([port][, host][, backlog][, callback]), as Node itself reads it.
    const port = typeof first === 'function' ? 0 : (first ?? 0);
    const given = typeof args[1] === 'string' ? args[1] : '';
    if (!ALL_INTERFACES.has(given)) return listen.apply(this, args);
    const backlog = [args[1], args[2]].find((value) => typeof value === 'number');
    options = { port: Number(port), ...(backlog !== undefined ? { backlog } : {}) };
    rest = args.filter((value) => typeof value === 'function').slice(-1);
  } else {
    return listen.apply(this, args);  // a Unix socket path
  }
  options.host = host;
  if (!ALL_INTERFACES.has(host) && host !== '127.0.0.1') loopbackCompanion(this);
  return listen.call(this, options, ...rest);
};
