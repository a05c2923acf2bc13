//! Writing one message made of several pieces with vectored writes, so that pieces are sent
//! from where they lie (a head, a body chunk, its framing) instead of being copied together.

use std::io::{self, IoSlice};

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Writes every non-empty piece of `parts`, in order.
pub async fn write_all<W: AsyncWrite + Unpin>(to: &mut W, parts: &[&[u8]]) -> io::Result<()> {
    let mut slices = [IoSlice::new(&[]); 8];
    let mut n = 0;
    for part in parts.iter().filter(|p| !p.is_empty()) {
        if n == slices.len() {
            // More pieces than one call carries here: send what is gathered first.
            write_slices(to, &mut slices[..n]).await?;
            n = 0;
        }
        slices[n] = IoSlice::new(part);
        n += 1;
    }
    write_slices(to, &mut slices[..n]).await
}

async fn write_slices<W: AsyncWrite + Unpin>(
    to: &mut W,
    mut rest: &mut [IoSlice<'_>],
) -> io::Result<()> {
    while !rest.is_empty() {
        let n = to.write_vectored(rest).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Takes at most three bytes per write, so that every slice boundary is crossed.
    struct Trickle(Vec<u8>);

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(3);
            self.0.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn every_piece_arrives_in_order_however_little_each_write_takes() {
        let pieces: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; usize::from(i % 5)]).collect();
        let parts: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        let mut out = Trickle(Vec::new());
        write_all(&mut out, &parts).await.unwrap();
        assert_eq!(out.0, pieces.concat());
    }
}
