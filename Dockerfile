# syntax=docker/dockerfile:1

# regwebhook's container image: one static binary on an empty base, run as
# an unprivileged user (65532), with its config at /etc/regwebhook/config.yml
# and its data under /var/lib/regwebhook.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t regwebhook .
#   docker run -p 5080:5080 -v regwebhook-data:/var/lib/regwebhook \
#     -e REGWEBHOOK_ADMIN_TOKEN=... -e REGWEBHOOK_RECEIVER_TOKEN=... regwebhook
#
# deploy/dockerfile_test.go checks this file, and builds the binary with the
# go build line below, exactly, to check that it is static and serves as an
# unprivileged user. Keep that line one command.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/regwebhook ./cmd/regwebhook
# The final image's files besides the binary: the user (the base is empty),
# CA certificates for https webhooks, a /tmp, the default config, and the
# data directory owned by the user (a new volume takes its owner from it).
RUN mkdir -p /rootfs/etc/ssl/certs /rootfs/etc/regwebhook /rootfs/var/lib/regwebhook /rootfs/tmp \
 && printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/var/lib/regwebhook:/sbin/nologin\n' > /rootfs/etc/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' > /rootfs/etc/group \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && cp deploy/config.yml /rootfs/etc/regwebhook/config.yml \
 && chown 65532:65532 /rootfs/var/lib/regwebhook && chmod 0700 /rootfs/var/lib/regwebhook \
 && chmod 1777 /rootfs/tmp

FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="regwebhook" \
      org.opencontainers.image.description="Webhooks for a self-hosted Docker Distribution registry" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /rootfs/ /
COPY --from=build /out/regwebhook /regwebhook
ENV REGWEBHOOK_CONFIG=/etc/regwebhook/config.yml
USER 65532:65532
EXPOSE 5080
VOLUME ["/var/lib/regwebhook"]
# A static image has no curl: the binary asks /readyz itself (exit 0 on 200).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/regwebhook", "health"]
ENTRYPOINT ["/regwebhook"]
CMD ["serve"]
