//! The flags of the wasm engine: its instance allocator.

use crate::config::EngineConfig;
use crate::defaults;
use crate::units::parse_bytes;
use clap::Args;
use std::path::PathBuf;

/// Flags of the wasm engine.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Allocate instances on demand instead of from the pooling allocator.
    #[arg(long, env = "WASYA_NO_POOLING")]
    #[arg(help_heading = "Limits")]
    pub no_pooling: bool,
    /// WebAssembly instances alive at once, across all actors.
    #[arg(long, env = "WASYA_MAX_INSTANCES", default_value_t = defaults::MAX_INSTANCES)]
    #[arg(help_heading = "Limits")]
    pub max_instances: u32,
    /// Pooling: elements one table of an instance may hold (raise it for a guest
    /// whose function table is larger).
    #[arg(long, env = "WASYA_POOL_TABLE_ELEMENTS", default_value_t = defaults::POOL_TABLE_ELEMENTS)]
    #[arg(help_heading = "Limits")]
    pub pool_table_elements: usize,
    /// Pooling: runtime state one core instance may take (raise it for a guest with
    /// very many functions or globals).
    #[arg(long, env = "WASYA_POOL_INSTANCE_SIZE", default_value = defaults::POOL_INSTANCE_SIZE_TEXT, value_parser = parse_bytes)]
    #[arg(help_heading = "Limits")]
    pub pool_instance_size: usize,
}

impl EngineArgs {
    /// The engine section, trusting `outbound_ca` beside the platform's roots.
    pub fn section(&self, outbound_ca: Vec<PathBuf>) -> EngineConfig {
        EngineConfig {
            pooling: !self.no_pooling,
            max_instances: self.max_instances,
            pool_table_elements: self.pool_table_elements,
            pool_instance_size: self.pool_instance_size,
            outbound_ca,
        }
    }
}
