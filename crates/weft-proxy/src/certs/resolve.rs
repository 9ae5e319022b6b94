//! A rustls certificate resolver over a [`Source`]: each handshake gets the certificate
//! current at that moment, so a rotation reaches new connections and leaves open ones alone.

use std::sync::Arc;

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::Source;

#[derive(Debug)]
pub struct Resolver {
    source: Arc<Source>,
}

impl Resolver {
    pub fn new(source: Arc<Source>) -> Resolver {
        Resolver { source }
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.source.certified_key()
    }
}

impl ResolvesClientCert for Resolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.source.certified_key()
    }

    fn has_certs(&self) -> bool {
        self.source.certified_key().is_some()
    }
}
