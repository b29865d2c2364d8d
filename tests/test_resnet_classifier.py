"""The paper's ResNet diversity classifier (undersr.analysis.resnet): torchvision's architecture, local init only."""
from undersr.analysis.resnet import ResNetClassifier, load_imagenet_init

import pytest
import torch
import torchvision


def test_resnet152_is_torchvisions_with_a_new_head():
    model = ResNetClassifier(16)
    reference = torchvision.models.resnet152(weights=None)  # 60,192,808 parameters with 1000 classes
    head = 2048 * 1000 + 1000
    assert sum(p.numel() for p in model.parameters()) == \
        sum(p.numel() for p in reference.parameters()) - head + 2048 * 16 + 16
    assert ResNetClassifier(16, 'resnet18').eval()(torch.rand(2, 3, 32, 32)).shape == (2, 16)


def test_unknown_depth_names_the_valid_ones():
    with pytest.raises(ValueError, match='resnet152'):
        ResNetClassifier(16, 'resnet99')


def test_imagenet_init_loads_everything_but_the_head(tmp_path):
    torch.manual_seed(0)
    imagenet = torchvision.models.resnet18(weights=None)
    path = tmp_path / 'resnet18-imagenet.pth'
    torch.save(imagenet.state_dict(), path)
    model = ResNetClassifier(16, 'resnet18')
    head = model.net.fc.weight.clone()
    load_imagenet_init(model, str(path))
    assert torch.equal(model.net.conv1.weight, imagenet.conv1.weight)
    assert torch.equal(model.net.layer4[1].bn2.running_var, imagenet.layer4[1].bn2.running_var)
    assert torch.equal(model.net.fc.weight, head)  # 16 classes: the new head keeps its own initialisation


def test_imagenet_init_of_another_depth_or_a_missing_file_names_the_file(tmp_path):
    path = tmp_path / 'resnet34.pth'
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    with pytest.raises(ValueError, match=r'resnet34\.pth does not fit ResNet.*unexpected \[.layer1\.2'):
        load_imagenet_init(ResNetClassifier(16, 'resnet18'), str(path))
    with pytest.raises(FileNotFoundError, match=r'absent\.pth.*resnet152-394f9c45\.pth'):
        load_imagenet_init(ResNetClassifier(16, 'resnet18'), str(tmp_path / 'absent.pth'))
