//! Which traces are recorded: the standard `OTEL_TRACES_SAMPLER` samplers, decided for
//! each hop as the SDK would decide for a span.
//!
//! The hop spans are built by hand (see [`super`]), so the SDK's sampler never sees
//! them; this reads the same variables and applies the same rules. A parent-based
//! sampler (the default) follows the `sampled` flag of the envelope's `traceparent`, so
//! a trace is recorded or not as a whole; a trace a submission starts is decided by
//! its root sampler: always, never, or for a fraction of trace ids.

use super::context::SAMPLED;

/// A root sampler.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Root {
    /// Record every trace.
    AlwaysOn,
    /// Record no trace.
    AlwaysOff,
    /// This fraction of trace ids, decided from the id, so every hop agrees.
    Ratio(f64),
}

/// How a hop's trace is sampled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampler {
    /// Decides a hop's trace wherever no incoming decision is followed.
    pub root: Root,
    /// Follow the incoming `traceparent`'s decision where there is one.
    pub parent_based: bool,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler {
            root: Root::AlwaysOn,
            parent_based: true,
        }
    }
}

impl Sampler {
    /// The sampler `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` name; `None` for
    /// a name this node does not know (the caller says so and keeps the default).
    pub fn from_names(name: Option<&str>, argument: Option<&str>) -> Option<Sampler> {
        let ratio = || {
            argument
                .and_then(|text| text.trim().parse::<f64>().ok())
                .filter(|ratio| (0.0..=1.0).contains(ratio))
                .unwrap_or(1.0)
        };
        let (root, parent_based) = match name.map(str::trim).unwrap_or("parentbased_always_on") {
            "always_on" => (Root::AlwaysOn, false),
            "always_off" => (Root::AlwaysOff, false),
            "traceidratio" => (Root::Ratio(ratio()), false),
            "parentbased_always_on" => (Root::AlwaysOn, true),
            "parentbased_always_off" => (Root::AlwaysOff, true),
            "parentbased_traceidratio" => (Root::Ratio(ratio()), true),
            _ => return None,
        };
        Some(Sampler { root, parent_based })
    }

    /// The trace flags of a hop of trace `trace_id`, given the flags of the incoming
    /// context, when it came with one.
    pub fn flags(&self, trace_id: &[u8; 16], parent_flags: Option<u8>) -> u8 {
        if self.parent_based
            && let Some(flags) = parent_flags
        {
            return flags;
        }
        let keep = match self.root {
            Root::AlwaysOn => true,
            Root::AlwaysOff => false,
            Root::Ratio(ratio) => {
                let mut low = [0u8; 8];
                low.copy_from_slice(&trace_id[8..]);
                // The low 63 bits against the ratio's share of them.
                ((u64::from_be_bytes(low) >> 1) as f64) < ratio * (1u64 << 63) as f64
            }
        };
        let others = parent_flags.map_or(0, |flags| flags & !SAMPLED);
        if keep { others | SAMPLED } else { others }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_standard_names() {
        assert_eq!(Sampler::from_names(None, None), Some(Sampler::default()));
        assert_eq!(
            Sampler::from_names(Some("parentbased_traceidratio"), Some("0.25")),
            Some(Sampler {
                root: Root::Ratio(0.25),
                parent_based: true
            })
        );
        assert_eq!(
            Sampler::from_names(Some("always_off"), None).map(|sampler| sampler.root),
            Some(Root::AlwaysOff)
        );
        assert_eq!(Sampler::from_names(Some("jaeger_remote"), None), None);
    }

    #[test]
    fn a_parent_based_sampler_follows_the_incoming_decision() {
        let sampler = Sampler::from_names(Some("parentbased_always_off"), None).expect("known");
        assert_eq!(sampler.flags(&[0; 16], Some(SAMPLED)), SAMPLED);
        assert_eq!(sampler.flags(&[0; 16], Some(0)), 0);
        assert_eq!(
            sampler.flags(&[0; 16], None),
            0,
            "a new trace: the root decides"
        );
    }

    #[test]
    fn a_ratio_keeps_about_that_share_of_traces_and_every_hop_agrees() {
        let sampler = Sampler::from_names(Some("traceidratio"), Some("0.25")).expect("known");
        let kept = (0u32..4000)
            .filter(|n| {
                let mut trace = [0u8; 16];
                trace[8..12].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_be_bytes());
                sampler.flags(&trace, None) & SAMPLED != 0
            })
            .count();
        assert!((800..1200).contains(&kept), "{kept} of 4000 kept");
        let trace = [7u8; 16];
        assert_eq!(sampler.flags(&trace, None), sampler.flags(&trace, None));
    }
}
