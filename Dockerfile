# The `wi` container image: `docker build -t wi .` then
# `docker run --rm wi demo` (the quickstart is built in) or, with
# credentials mounted, `docker run --rm -v "$PWD:/work" -w /work wi plan -f spec.yaml`.

# Build stage: the release binary from the locked dependency set.
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin wi \
    && install -D -m 0755 target/release/wi /out/wi

# Runtime stage: distroless (glibc, CA certificates, no shell), non-root.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/wi /usr/local/bin/wi
USER nonroot:nonroot
WORKDIR /home/nonroot
ENTRYPOINT ["wi"]
CMD ["--help"]
