"""Cut out the object at pixel (X, Y): SAMWB_API_KEY=samwb_... python segment.py photo.jpg X Y"""

import base64
import os
import sys
import urllib.request

import httpx

api = httpx.Client(base_url=os.environ.get("SAMWB_URL", "http://127.0.0.1:7860"), timeout=120,
                   headers={"Authorization": "Bearer " + os.environ["SAMWB_API_KEY"]})
image = "data:image/png;base64," + base64.b64encode(open(sys.argv[1], "rb").read()).decode()
body = {"image": image, "objects": [{"points": [[float(sys.argv[2]), float(sys.argv[3])]]}]}
answer = api.post("/v1/segment", json=body).raise_for_status().json()
urllib.request.urlretrieve(answer["objects"][0]["cutout"], "cutout.png")  # a data: URI
