use super::*;
use crate::model::{LogRecord, Value};
use crate::telemetry::Gauge;

struct DropOdd;
impl Processor for DropOdd {
    fn process(&mut self, batch: &mut LogBatch) {
        let mut i = 0;
        batch.records.retain(|_| {
            i += 1;
            i % 2 == 1
        });
    }
    fn fork(&self) -> Box<dyn Processor> {
        Box::new(DropOdd)
    }
}

fn batch(n: usize) -> Batch {
    Batch::Logs(LogBatch {
        origins: vec![Default::default()],
        records: (0..n)
            .map(|i| LogRecord {
                body: Value::Int(i as i64),
                ..Default::default()
            })
            .collect(),
    })
}

#[tokio::test]
async fn fans_out_to_every_pipeline_and_acks_after_all_deliver() {
    let (tx_a, mut rx_a) = queue::bounded(100, Gauge::default());
    let (tx_b, mut rx_b) = queue::bounded(100, Gauge::default());
    let consumer = Consumer::new(vec![
        Arc::new(Pipeline {
            signal: Signal::Logs,
            id: "logs/a".into(),
            processors: vec![],
            gates: vec![],
            exporters: vec![tx_a],
            batch: None,
            encoded_logs: false,
        }),
        Arc::new(Pipeline {
            signal: Signal::Logs,
            id: "logs/b".into(),
            processors: vec![Box::new(DropOdd)],
            gates: vec![],
            exporters: vec![tx_b],
            batch: None,
            encoded_logs: false,
        }),
    ]);
    let mut worker = consumer.worker();
    let handle = tokio::spawn(async move { worker.consume(batch(4), &Metadata::default()).await });
    let a = rx_a.recv().await.unwrap();
    let b = rx_b.recv().await.unwrap();
    assert_eq!((a.records(), b.batch.len()), (4, 2));
    a.delivered();
    assert!(!handle.is_finished());
    b.delivered();
    assert_eq!(handle.await.unwrap(), Ok(6));
}

#[tokio::test]
async fn a_full_exporter_refuses_the_whole_batch_everywhere() {
    let (tx_a, mut rx_a) = queue::bounded(100, Gauge::default());
    let (tx_b, _rx_b) = queue::bounded(4, Gauge::default());
    let _held = tx_b.try_reserve(2).unwrap();
    let consumer = Consumer::new(vec![Arc::new(Pipeline {
        signal: Signal::Logs,
        id: "logs".into(),
        processors: vec![],
        gates: vec![],
        exporters: vec![tx_a, tx_b],
        batch: None,
        encoded_logs: false,
    })]);
    let mut worker = consumer.worker();
    assert_eq!(
        worker.consume(batch(3), &Metadata::default()).await,
        Err(ConsumeError::Full)
    );
    assert!(
        rx_a.try_recv().is_none(),
        "nothing may reach the other exporter"
    );
}

#[tokio::test]
async fn a_batch_larger_than_a_whole_queue_is_refused_for_good() {
    let (tx_a, mut rx_a) = queue::bounded(100, Gauge::default());
    let (tx_b, _rx_b) = queue::bounded(2, Gauge::default());
    let consumer = Consumer::new(vec![Arc::new(Pipeline {
        signal: Signal::Logs,
        id: "logs".into(),
        processors: vec![],
        gates: vec![],
        exporters: vec![tx_a, tx_b],
        batch: None,
        encoded_logs: false,
    })]);
    let mut worker = consumer.worker();
    let err = worker
        .consume(batch(3), &Metadata::default())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ConsumeError::TooLarge {
            items: 3,
            capacity: 2
        }
    );
    assert!(err.to_string().contains("queue_size 2"));
    assert!(rx_a.try_recv().is_none(), "nothing reached any exporter");
}

#[tokio::test]
async fn a_request_larger_than_a_whole_queue_in_bytes_is_refused_for_good() {
    let gauges = queue::Gauges::default();
    let (tx, mut rx) = queue::bounded_in_bytes(100, 64 << 10, gauges.clone());
    let consumer = Consumer::new(vec![Arc::new(Pipeline {
        signal: Signal::Logs,
        id: "logs".into(),
        processors: vec![],
        gates: vec![],
        exporters: vec![tx],
        batch: None,
        encoded_logs: false,
    })]);
    let mut worker = consumer.worker();
    let err = worker
        .dispatch(batch(3), &Metadata::default(), 65 << 10)
        .err();
    assert_eq!(
        err,
        Some(ConsumeError::TooManyBytes {
            bytes: 65 << 10,
            capacity: 64 << 10
        })
    );
    assert!(rx.try_recv().is_none());
    assert!(
        worker
            .dispatch(batch(3), &Metadata::default(), 64 << 10)
            .is_ok()
    );
    // The bytes gauge counts what waits, until the exporter releases it.
    assert_eq!(gauges.bytes.get(), 64 << 10);
    assert_eq!(gauges.items.get(), 3);
    rx.try_recv().unwrap().delivered();
    assert_eq!(gauges.bytes.get(), 0);
    assert_eq!(gauges.items.get(), 0);
}

#[tokio::test]
async fn batch_emptied_by_processors_is_accepted_without_export() {
    let (tx, mut rx) = queue::bounded(10, Gauge::default());
    struct DropAll;
    impl Processor for DropAll {
        fn process(&mut self, batch: &mut LogBatch) {
            batch.records.clear();
        }
        fn fork(&self) -> Box<dyn Processor> {
            Box::new(DropAll)
        }
    }
    let consumer = Consumer::new(vec![Arc::new(Pipeline {
        signal: Signal::Logs,
        id: "logs".into(),
        processors: vec![Box::new(DropAll)],
        gates: vec![],
        exporters: vec![tx],
        batch: None,
        encoded_logs: false,
    })]);
    assert_eq!(
        consumer
            .worker()
            .consume(batch(3), &Metadata::default())
            .await,
        Ok(0)
    );
    assert!(rx.try_recv().is_none());
}
