//! Processors: one file per transformation, listed in `PROCESSORS`.
pub mod segments;

crate::component::components!(
    PROCESSORS: crate::pipeline::Stage = [
        regex_parser,
        log_transform,
        k8sattributes,
        memory_limiter,
        batch
    ]
);
