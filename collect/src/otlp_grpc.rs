//! OTLP over gRPC (`collect.intake.otlp_grpc_listen`, off by default): the trace and logs
//! services of OpenTelemetry's collector protocol, for exporters that speak only gRPC. The
//! same mapping ([`crate::otlp`]), keys (an `authorization: Bearer KEY` metadata entry),
//! limits and durability as OTLP over HTTP; gzip-compressed messages are accepted.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use crate::intake::{Intake, OtlpOutcome, OtlpRefusal};
use crate::otlp::Signal;

/// The gRPC services over one intake.
#[derive(Clone)]
pub struct OtlpGrpc {
    intake: Arc<Intake>,
}

impl OtlpGrpc {
    pub fn new(intake: Arc<Intake>) -> Self {
        Self { intake }
    }

    /// Serves both services on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let limit = self.intake.max_body_bytes;
        let traces = TraceServiceServer::new(self.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(limit);
        let logs =
            LogsServiceServer::new(self).accept_compressed(CompressionEncoding::Gzip).max_decoding_message_size(limit);
        tonic::transport::Server::builder()
            .add_service(traces)
            .add_service(logs)
            .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), shutdown)
            .await
    }

    fn caller(&self, metadata: &tonic::metadata::MetadataMap) -> Result<String, Status> {
        let key = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim())
            .or_else(|| metadata.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim));
        match key.and_then(|k| mcpsiem_runtime::auth::authenticate(&self.intake.api_keys, k)) {
            Some(caller) => Ok(caller.name),
            None => {
                metrics::counter!("mcpsiem_intake_requests_total", "outcome" => "unauthorized").increment(1);
                Err(Status::unauthenticated("send a key of collect.intake.api_keys as `authorization: Bearer KEY`"))
            }
        }
    }
}

fn status(refusal: OtlpRefusal) -> Status {
    match refusal {
        OtlpRefusal::TooLarge(message) => Status::resource_exhausted(message),
        // Retryable: the exporter sends the batch again later.
        OtlpRefusal::Unavailable(message) => Status::unavailable(message),
    }
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let caller = self.caller(request.metadata())?;
        let OtlpOutcome { rejected, message } = self
            .intake
            .take_otlp(Signal::Traces, &caller, |capture, budget| {
                crate::otlp::traces(request.get_ref(), capture, budget)
            })
            .map_err(status)?;
        let partial_success =
            message.map(|error_message| ExportTracePartialSuccess { rejected_spans: rejected as i64, error_message });
        Ok(Response::new(ExportTraceServiceResponse { partial_success }))
    }
}

#[tonic::async_trait]
impl LogsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let caller = self.caller(request.metadata())?;
        let OtlpOutcome { rejected, message } = self
            .intake
            .take_otlp(Signal::Logs, &caller, |capture, budget| crate::otlp::logs(request.get_ref(), capture, budget))
            .map_err(status)?;
        let partial_success = message
            .map(|error_message| ExportLogsPartialSuccess { rejected_log_records: rejected as i64, error_message });
        Ok(Response::new(ExportLogsServiceResponse { partial_success }))
    }
}
