#!/bin/sh
# The object at pixel (X, Y), as JSON: SAMWB_API_KEY=samwb_... sh examples/segment.sh photo.jpg X Y
body='{"image": "data:image/png;base64,%s", "objects": [{"points": [[%s, %s]]}], "mask_only": true}'
printf "$body" "$(base64 -w0 "$1")" "$2" "$3" | curl -sS --fail-with-body -d @- \
  -H "Authorization: Bearer $SAMWB_API_KEY" -H "Content-Type: application/json" \
  "${SAMWB_URL:-http://127.0.0.1:7860}/v1/segment"
