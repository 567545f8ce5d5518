// Preloaded into supergateway (node --require): it listens on every interface and has no
// option to choose, and what it serves runs shell commands. A listen() given only a port
// gets 127.0.0.1 as its host.
const net = require('node:net');

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && typeof args[1] !== 'string') {
    args.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, args);
};
