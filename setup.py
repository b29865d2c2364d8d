from setuptools import find_packages, setup


def requirements(path='requirements.txt'):
    with open(path) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith('#')]


setup(
    name='undersr',
    version='0.1.0',
    description='Undertrained image reconstruction as realistic degradation for blind SR (a BasicSR plugin)',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['undersr', 'undersr.*']),
    python_requires='>=3.9',
    install_requires=requirements(),
    extras_require={'test': ['pytest>=7', 'pytest-xdist', 'ruff']},
    entry_points={'console_scripts': ['undersr=undersr.cli:main']},
)
