from .weight_conversion import (
                                FORMATS,
                                convert_checkpoint,
                                convert_state_dict,
                                detect_format,
                                load_weights,
)

__all__ = ['FORMATS', 'convert_checkpoint', 'convert_state_dict', 'detect_format', 'load_weights']
