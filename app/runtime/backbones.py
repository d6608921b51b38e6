"""keras.applications backbones and the pixels each expects: the one table of them.

A backbone is recognised by its model name ("mobilenetv2_1.00_224") or, since exports
rename it (Teachable Machine wraps MobileNetV2 in a model called "model1"), by the names
of its own first layers, which `keras.applications` fixes per family (checked against
keras/src/applications/*.py of Keras 3 and tf_keras/src/applications/*.py of Keras 2).
Early layers are used because people cut backbones off at the end, never at the start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Family:
    """One keras.applications family.

    `scale` is what it expects when it holds no preprocessing layers of its own: its
    `preprocess_input` mode, or for the families that include preprocessing layers
    (`include_preprocessing=True`, their default) the range their documentation asks
    for without them. With the layers there, they decide (raw 0-255 pixels).
    """

    name: str
    scale: str
    model_name: str  # pattern on the default model name
    layers: tuple[str, ...]  # patterns each matched by one of the model's own layer names
    includes_preprocessing: bool = False


# Order matters where signatures overlap: ResNetV2 and DenseNet before ResNet (all have
# conv1_conv), Xception before VGG (both have block1_conv1), EfficientNet before V2.
FAMILIES: tuple[Family, ...] = (
    Family("MobileNetV3", "symmetric", r"mobilenet_?v3",
           (r"^(conv_bn|Conv/BatchNorm)$", r"^expanded_conv[_/]project$"), True),
    Family("MobileNetV2", "symmetric", r"mobilenetv2_", (r"^Conv1$", r"^bn_Conv1$")),
    Family("MobileNet", "symmetric", r"mobilenet_", (r"^conv1$", r"^conv_dw_1$")),
    Family("ResNetV2", "symmetric", r"resnet\d+v2$", (r"^conv2_block1_preact_bn$",)),
    Family("ResNetRS", "symmetric", r"resnet-rs-",
           (r"^stem_\d+_stem_conv_1$", r"^BlockGroup2__block_0__"), True),
    Family("DenseNet", "torch", r"densenet\d+$", (r"^(conv1/conv|conv1_conv)$", r"^pool2_conv$")),
    Family("ResNet", "caffe", r"resnet(50|101|152)$",
           (r"^conv1_conv$", r"^conv2_block1_1_conv$")),
    Family("Xception", "symmetric", r"xception$", (r"^block1_conv1_bn$", r"^block2_sepconv1$")),
    Family("VGG", "caffe", r"vgg1[69]$", (r"^block1_conv1$", r"^block1_conv2$", r"^block2_conv1$")),
    Family("InceptionV3", "symmetric", r"inception_v3$", (r"^mixed0$", r"^mixed1$")),
    Family("InceptionResNetV2", "symmetric", r"inception_resnet_v2$",
           (r"^mixed_5b$", r"^block35_1_mixed$")),
    Family("NASNet", "symmetric", r"nasnet", (r"^stem_conv1$", r"^stem_bn1$")),
    # EfficientNet always includes its Rescaling and Normalization: preprocess_input is
    # a pass-through. Without those layers, V2 and ResNetRS want [-1, 1] (their docs);
    # ConvNeXt's own layer is ImageNet mean/std ("torch"), RegNet's a 1/255 Rescaling.
    Family("EfficientNet", "raw", r"efficientnetb\d$", (r"^stem_conv$", r"^block1a_dwconv$"),
           True),
    Family("EfficientNetV2", "symmetric", r"efficientnetv2-",
           (r"^stem_conv$", r"^block1a_project_conv$"), True),
    Family("ConvNeXt", "torch", r"convnext_",
           (r"_stem$", r"_stage_0_block_0_depthwise_conv$"), True),
    Family("RegNet", "unit", r"regnet[xy]\d+$", (r"_stem_conv$", r"_Stage_0_[XY]Block_0_"), True),
)


@dataclass(frozen=True)
class Backbone:
    family: Family
    name: str  # the nested model's own name
    evidence: str  # how it was recognised, for the reason people read


def identify_backbone(model: Any, by_name: bool = True) -> Backbone | None:
    """The keras.applications family `model` is (or starts with), by name or by layers.
    `by_name` False: by layers only (a user's own top-level model may be called
    "mobilenet_cats" and hold no MobileNet at all)."""
    name = str(getattr(model, "name", ""))
    names = [str(getattr(layer, "name", "")) for layer in getattr(model, "layers", [])]
    for family in FAMILIES:
        if by_name and re.match(family.model_name, name.lower()):
            return Backbone(family, name, f"its name {name}")
        found = [next((n for n in names if re.search(p, n)), None) for p in family.layers]
        if all(found):
            return Backbone(family, name, f"its layers {', '.join(map(str, found))}")
    return None
