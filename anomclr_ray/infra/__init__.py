"""What every distributed part stands on: a study's storage root (`storage`), connecting to Ray and the
multi-node checks (`raycluster`), and the Prometheus metrics of trials and training (`monitoring`)."""
