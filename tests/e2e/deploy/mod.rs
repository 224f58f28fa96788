//! Running it all: the quickstart, scale-out, and the deployment files checked against the code.

mod files;
mod quickstart;
mod scale_out;
