import type { Config, GraphStoreConfig } from '../../src/config/config';

/** The Graph store's settings of a config that must use it (a test of the Graph store, or of its credential). */
export function graphStoreOf(config: Pick<Config, 'mappings'>): GraphStoreConfig {
  if (config.mappings.store !== 'graph') throw new Error(`expected MAPPING_STORE=graph, the config has '${config.mappings.store}'`);
  return config.mappings.graph;
}
