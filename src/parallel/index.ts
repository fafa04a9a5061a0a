export { detectWorld, type Launcher, type World } from './world.js';
export { communicator, distTimeout, DEFAULT_TIMEOUT_S, type Communicator } from './comm.js';
export { shareOf, shardCounts, shardOffset } from './shard.js';
