//! Processors: one file per transformation, listed in `PROCESSORS`.
pub mod segments;

crate::component::components!(
    PROCESSORS: crate::pipeline::Stage = [regex_parser, log_transform, memory_limiter, batch]
);
