"""diffusers' StableDiffusionSafetyChecker on a tiny random CLIP config: the saved checker (save_pretrained: config.json +
model.safetensors, the layout of a base model's safety_checker/ folder), pixel values, and its outputs: image
embeddings, cosine similarities to the special-care and concept embeddings, and the has_nsfw_concepts flags.
Thresholds are set from the similarities themselves so that some images are flagged and some are not."""
import os
import numpy as np
import torch
from transformers import CLIPConfig
from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker, cosine_distance
from common import FIXTURES, save_fixture

torch.manual_seed(0)
config = CLIPConfig(
    text_config=dict(hidden_size=16, intermediate_size=24, num_hidden_layers=1, num_attention_heads=2, vocab_size=100),
    vision_config=dict(hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4, image_size=28, patch_size=7),
    projection_dim=12,
)
sc = StableDiffusionSafetyChecker(config).eval()
with torch.no_grad():
    for p in sc.vision_model.parameters():
        p.add_(torch.randn_like(p) * 0.3)
    sc.visual_projection.weight.normal_(0, 0.2)
    sc.concept_embeds.normal_(0, 1)
    sc.special_care_embeds.normal_(0, 1)
x = torch.randn(4, 3, 28, 28)
with torch.no_grad():
    embeds = sc.visual_projection(sc.vision_model(x)[1])
    special = cosine_distance(embeds, sc.special_care_embeds)
    concept = cosine_distance(embeds, sc.concept_embeds)
    # thresholds above every image's similarity, except concept 3 and special-care concept 1, set between the
    # largest and the second largest: one image trips a concept, one (maybe the same) a special-care concept
    sc.concept_embeds_weights.copy_(concept.max(0).values + 0.05)
    sc.special_care_embeds_weights.copy_(special.max(0).values + 0.05)
    mid = lambda v: float(v.sort(descending=True).values[:2].mean())
    sc.concept_embeds_weights[3] = mid(concept[:, 3])
    sc.special_care_embeds_weights[1] = mid(special[:, 1])
    images = np.zeros((4, 8, 8, 3), dtype=np.float32)
    _, flags = sc(clip_input=x, images=images)
out = os.path.join(FIXTURES, 'safety_checker', 'tiny')
sc.save_pretrained(out, safe_serialization=True)
save_fixture('safety_checker/outputs', {
    'pixel_values': x, 'image_embeds': embeds, 'special_cos': special, 'concept_cos': concept,
    'has_nsfw': torch.tensor([bool(f) for f in flags], dtype=torch.uint8),
    'concept_thresholds': sc.concept_embeds_weights, 'special_thresholds': sc.special_care_embeds_weights,
}, {'flags': [bool(f) for f in flags]})
print('safety checker fixtures written, flags', flags)
