/** The storage layer: contracts, the in-memory backends and the Redis backends. */
export * from './backend';
export { FencedView, fencedWriteError } from './fenced-view';
export * from './held-lock';
export { InmemBackend, InmemHABackend, InmemStore } from './inmem';
export { DEFAULT_PREFIX, type RedisKeys, redisKeys, validatePrefix } from './redis/keys';
export { RedisBackend, type RedisBackendOptions } from './redis/redis-backend';
export { RedisHABackend, type RedisHABackendOptions, type RedisHAStats } from './redis/redis-ha-backend';
export { immediateChildren, storageUnavailableError } from './semantics';
