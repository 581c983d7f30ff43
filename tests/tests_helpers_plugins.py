"""A user's plugin module, as tests write it to a temporary folder: it registers an objective by
name when imported (``$QKD_PLUGINS``)."""

ZERO_KD_PLUGIN = '''
from qkd_pl import Objective, register_objective

@register_objective
class Zero(Objective):
    name = "zero-kd"
    help = "no teacher term at all"

    def teacher_term(self, s, t, target):
        return s.sum() * 0
'''
