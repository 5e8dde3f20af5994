from setuptools import setup

setup(
    name='greet',
    version='1.0',
    description='Says hello',
    py_modules=['greet'],
)
