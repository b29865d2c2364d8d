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


# ---------------------------------------------------------------- as the diversity classifier of undersr.analysis

def test_resnet_trains_saves_reloads_and_scores_a_dataset(tmp_path, sample_pairs):
    from undersr.analysis.classifier import CLASSES, load_degradation_classifier, train_degradation_classifier
    from undersr.analysis.report import analyze
    path = tmp_path / 'resnet.pth'
    result = train_degradation_classifier(str(sample_pairs / 'gt'), str(path), steps=2, patch=16, device='cpu',
                                          batch_size=8, train_per_class=2, holdout_per_class=1, progress=False,
                                          arch='resnet18')
    assert result['network'] == 'resnet18' and result['holdout_samples'] == len(CLASSES)
    model = load_degradation_classifier(str(path))
    assert isinstance(model, ResNetClassifier) and model.meta['arch']['depth'] == 'resnet18'
    x = torch.rand(3, 3, 16, 16)
    assert torch.allclose(model(x), result['model'].cpu()(x), atol=1e-5)  # the saved weights are the trained ones
    report = analyze([str(sample_pairs)], str(tmp_path / 'analysis'), classifier=str(path), progress=False)
    overall = report['datasets'][sample_pairs.name]['overall']
    assert overall['n'] == 3 and 0 <= overall['clean_share'] <= 1
    assert report['classifier']['path'] == str(path) and report['classifier']['network'] == 'resnet18'
    assert '(resnet18): held-out accuracy' in (tmp_path / 'analysis' / 'analysis.md').read_text()


def test_classifier_command_starts_a_resnet_from_a_local_imagenet_file(tmp_path, sample_pairs, capsys):
    from undersr.analysis.classifier import load_degradation_classifier
    from undersr.cli import train_degradation_classifier as cli
    torch.manual_seed(1)
    imagenet = torchvision.models.resnet18(weights=None)
    init = tmp_path / 'resnet18-imagenet.pth'
    torch.save(imagenet.state_dict(), init)
    args = ['--images', str(sample_pairs / 'gt'), '--steps', '1', '--patch', '16', '--train-per-class', '2',
            '--holdout-per-class', '1', '--batch-size', '4', '--lr', '0', '--device', 'cpu', '--validation-images', '2']
    cli.main(args + ['--arch', 'resnet18', '--init', str(init), '--out', str(tmp_path / 'c.pth')])
    assert 'held-out accuracy' in capsys.readouterr().out
    model = load_degradation_classifier(str(tmp_path / 'c.pth'))
    # learning rate 0: the convolutions are still ImageNet's after the one step
    assert torch.equal(model.net.conv1.weight, imagenet.conv1.weight)
    assert model.meta['init'] == str(init)
    with pytest.raises(SystemExit, match=r'--init loads torchvision ImageNet weights into a ResNet'):
        cli.main(args + ['--init', str(init), '--out', str(tmp_path / 'd.pth')])
    with pytest.raises(SystemExit, match=r"unknown classifier arch 'resnet99'.*resnet152"):
        cli.main(args + ['--arch', 'resnet99', '--out', str(tmp_path / 'e.pth')])


def test_a_checkpoint_whose_weights_do_not_fit_its_network_names_the_file(tmp_path):
    from undersr.analysis.classifier import CHECKPOINT_KIND, CLASSES, load_degradation_classifier
    path = tmp_path / 'mixed.pth'
    torch.save({'kind': CHECKPOINT_KIND, 'state_dict': ResNetClassifier(16, 'resnet18').state_dict(),
                'arch': {'type': 'ResNetClassifier', 'num_classes': 16, 'depth': 'resnet34'},
                'classes': list(CLASSES), 'patch': 16}, path)
    with pytest.raises(ValueError, match=r'mixed\.pth: its weights do not fit its recorded network'):
        load_degradation_classifier(str(path))
