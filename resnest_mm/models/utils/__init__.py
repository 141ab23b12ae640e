from .weight_conversion import (
                                EXPORT_FORMATS,
                                FORMATS,
                                convert_checkpoint,
                                convert_state_dict,
                                detect_format,
                                export_checkpoint,
                                export_state_dict,
                                load_weights,
)

__all__ = ['EXPORT_FORMATS', 'FORMATS', 'convert_checkpoint', 'convert_state_dict',
           'detect_format', 'export_checkpoint', 'export_state_dict', 'load_weights']
