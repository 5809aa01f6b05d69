#!/usr/bin/env bash
# curl-check.sh: checks a Bedrock Runtime endpoint (the simulator, normally)
# with an independent client: curl's own SigV4 signing, and plain shell
# string checks (no grep, no jq).
#
# usage: curl-check.sh BASE_URL ACCESS_KEY_ID SECRET_ACCESS_KEY [MODEL_ID]
#
# MODEL_ID should have a low requests-per-minute quota (e.g. 3), so that the
# script can provoke a 429 ThrottlingException within a few requests.
set -euo pipefail

base=${1:?usage: curl-check.sh BASE_URL ACCESS_KEY_ID SECRET_ACCESS_KEY [MODEL_ID]}
key=${2:?access key id missing}
secret=${3:?secret access key missing}
model=${4:-anthropic.claude-3-haiku-20240307-v1:0}
escaped=${model//:/%3A} # the SDKs send the model id URL-escaped
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "curl-check: FAIL: $*" >&2; exit 1; }
pass() { echo "curl-check: ok: $*"; }

# call OP BODY [SECRET]: POST BODY to OP, signed with SigV4 by curl. Sets
# status, body and headers (lower-cased).
call() {
	local op=$1 data=$2 sec=${3:-$secret}
	status=$(curl -sS -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' \
		--aws-sigv4 "aws:amz:us-east-1:bedrock" --user "$key:$sec" \
		-H 'Content-Type: application/json' -H 'Accept: application/json' \
		--data-binary "$data" "$base/model/$escaped/$op")
	body=$(<"$tmp/body")
	headers=$(<"$tmp/headers")
	headers=${headers,,}
}

expect() { # expect DESCRIPTION PATTERN VALUE
	# shellcheck disable=SC2053 # the pattern is meant to glob
	[[ $3 == $2 ]] || fail "$1: wanted $2 in: $3"
}

# 1. Converse
call converse '{"messages":[{"role":"user","content":[{"text":"What should a termination clause contain?"}]}],"inferenceConfig":{"maxTokens":300}}'
expect "converse status" 200 "$status"
expect "converse role" '*"role":"assistant"*' "$body"
expect "converse stop reason" '*"stopReason":"end_turn"*' "$body"
expect "converse usage" '*"usage":{"inputTokens":*"outputTokens":*"totalTokens":*' "$body"
expect "converse answer" '*termination*' "$body"
pass "converse"

# 2. InvokeModel with an Anthropic Messages body
call invoke '{"anthropic_version":"bedrock-2023-05-31","max_tokens":300,"messages":[{"role":"user","content":"Explain data retention policies"}]}'
expect "invoke status" 200 "$status"
expect "invoke body" '*"type":"message"*"role":"assistant"*"content":[{"type":"text","text":"*' "$body"
expect "invoke stop reason" '*"stop_reason":"end_turn"*' "$body"
expect "invoke input token header" '*x-amzn-bedrock-input-token-count: [0-9]*' "$headers"
expect "invoke output token header" '*x-amzn-bedrock-output-token-count: [0-9]*' "$headers"
pass "invoke"

# 3. A wrong secret is refused
call converse '{"messages":[{"role":"user","content":[{"text":"hi"}]}]}' "not-the-secret"
expect "bad signature status" 403 "$status"
expect "bad signature type" '*x-amzn-errortype: invalidsignatureexception*' "$headers"
pass "bad signature refused"

# 4. Exhaust the request quota until Bedrock's 429 comes back
for i in $(seq 1 50); do
	call converse '{"messages":[{"role":"user","content":[{"text":"hi"}]}],"inferenceConfig":{"maxTokens":50}}'
	[[ $status == 429 ]] && break
	expect "status before throttling" 200 "$status"
done
expect "throttling status (after $i requests)" 429 "$status"
expect "throttling type" '*x-amzn-errortype: throttlingexception*' "$headers"
expect "throttling message" '{"message":"Too many requests, please wait before trying again."}' "$body"
pass "429 ThrottlingException after $i requests"

echo "curl-check: all checks passed"
