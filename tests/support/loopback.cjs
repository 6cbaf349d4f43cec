// Loaded into the NNI manager (node) by the tests through NODE_OPTIONS: servers that would listen on all
// interfaces listen on loopback only.
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1');
  return listen.apply(this, args);
};
