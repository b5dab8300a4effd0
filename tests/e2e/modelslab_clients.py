"""Drives the official modelslab-py client against our server, as a user would: the client's base_url is the only
thing changed. Prints one JSON object: each call's final answer (after the client's own fetch polling).

usage: python modelslab_clients.py BASE_URL API_KEY BASE64_PNG MODEL_ID
"""
import json
import sys
import warnings

from modelslab_py.core.client import Client
from modelslab_py.core.apis.community import Community
from modelslab_py.schemas.community import ControlNet, Image2Image, Text2Image

warnings.filterwarnings("ignore")  # pydantic's .dict() deprecation, inside the client


def main() -> None:
    base, key, image, model_id = sys.argv[1:5]
    # fetch_timeout is the client's sleep between fetches (60 s by default); 1 s keeps the test short.
    client = Client(api_key=key, fetch_retry=120, fetch_timeout=1)
    client.base_url = base.rstrip("/") + "/api/"
    results = {}
    small = dict(model_id=model_id, width=64, height=64, num_inference_steps=2, seed=7)
    for enterprise in (False, True):
        api = Community(client=client, enterprise=enterprise)
        tag = "enterprise" if enterprise else "v6"

        def finish(answer):
            if answer.get("status") == "processing":
                return api.fetch(str(answer["id"]))
            return answer

        results[f"{tag}.controlnet"] = finish(api.controlnet(ControlNet(
            prompt="a red square", init_image=image, controlnet_model="canny", **small)))
        results[f"{tag}.text_to_image"] = finish(api.text_to_image(Text2Image(prompt="a lighthouse at dusk", **small)))
        results[f"{tag}.image_to_image"] = finish(api.image_to_image(Image2Image(
            prompt="a lighthouse at dawn", init_image=image, strength=0.6, **small)))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
