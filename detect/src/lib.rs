//! The detector: Sigma and Sigma correlation rules over the events stream and the lake.
