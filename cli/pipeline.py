"""placeholder"""

def add_args(sub):
    pass


def main(args):
    return 0
