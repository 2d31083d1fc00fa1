//! The MLLP surface: HL7 v2 over TCP (each message between a 0x0B start byte and 0x1C 0x0D), as
//! labs and interface engines send it. Thin, as `http/` operations are: each message is received
//! by `service::hl7_import` as `MMT_HL7_LISTEN_USER` and answered with its ACK in the same frame.
//! MLLP has no sign-in, so only peers in `MMT_HL7_LISTEN_ALLOW` are served.

use std::{net::IpAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::{app::AppState, domain::hl7, service::hl7_import};

/// A sender that says nothing for this long is disconnected (senders reconnect per batch).
const IDLE: Duration = Duration::from_secs(300);

/// Accepts until the task is dropped; each connection runs on its own.
pub async fn serve(state: AppState, listener: TcpListener) {
    let Some(listen) = state.config.hl7.listen.clone() else { return };
    loop {
        match listener.accept().await {
            Ok((stream, peer)) if allowed(&listen.allow, peer.ip()) => {
                tokio::spawn(connection(state.clone(), listen.user.clone(), stream));
            }
            Ok((_, peer)) => {
                tracing::warn!(%peer, "refused an MLLP connection from outside MMT_HL7_LISTEN_ALLOW");
            }
            Err(err) => {
                tracing::warn!(error = %err, "MLLP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn allowed(allow: &[ipnet::IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    allow.iter().any(|net| net.contains(&ip))
}

async fn connection(state: AppState, user: String, mut stream: TcpStream) {
    // Room for the largest document a message may carry, encoded.
    let max = usize::try_from(state.config.documents.max_bytes).unwrap_or(usize::MAX).saturating_mul(2);
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while let Some((message, used)) = hl7::next_block(&received) {
            let ack = match message {
                Some(bytes) => Some(answer(&state, &user, bytes).await),
                None => None,
            };
            received.drain(..used);
            if let Some(ack) = ack
                && stream.write_all(&hl7::framed(&ack)).await.is_err()
            {
                return;
            }
        }
        if received.len() > max {
            tracing::warn!(
                bytes = received.len(),
                "closed an MLLP connection whose message outgrew the limit"
            );
            return;
        }
        match tokio::time::timeout(IDLE, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => received.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    }
}

async fn answer(state: &AppState, user: &str, bytes: &[u8]) -> String {
    match hl7_import::receive_bytes(state, user, bytes).await {
        Ok(acks) => acks,
        Err(err) => hl7_import::failure_ack(&String::from_utf8_lossy(bytes), &err),
    }
}
