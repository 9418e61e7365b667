#!/usr/bin/env bash
# Creates the access-token signing keys for the cluster once (auth holds the private key, every
# service the public one). Run before the first `skaffold run`; rerunning keeps existing keys.
set -euo pipefail
kubectl get namespace swiftchat >/dev/null 2>&1 || kubectl create namespace swiftchat
if kubectl -n swiftchat get secret swiftchat-jwt >/dev/null 2>&1; then
    echo "secret swiftchat-jwt already exists"
    exit 0
fi
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
# The same key shape infra/stack.sh makes for the local stack.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/jwt-private.pem" 2>/dev/null
openssl pkey -in "$dir/jwt-private.pem" -pubout -out "$dir/jwt-public.pem" 2>/dev/null
kubectl -n swiftchat create secret generic swiftchat-jwt --from-file="$dir/jwt-private.pem" --from-file="$dir/jwt-public.pem"
