"""Neural Turing Machine (Graves, Wayne, Danihelka 2014), forward and backward through time by hand.

Read in this order:

    addressing.py   the four addressing stages (content, interpolation, circular shift, sharpening), read, erase and
                    add: each a forward/backward op pair on plain arrays, and `address`, the pipeline
    config.py       Config (the paper's copy-task settings), TUNED, the parameters and the batches
    model.py        the model as the paper tells it: the controller emits the heads' parameters, the heads address
                    and read and write, one step, then forward and backward through time; the loss, `predict`, and
                    `forward_naive`, the same model one sequence at a time from the paper's equations (the oracle)
    training.py     training on fresh random sequences, evaluation, the speed bench, results, `train ntm`

Every name of the four modules is available here as `ntm.<name>` (the model protocol of DESIGN.md).
"""
from __future__ import annotations

from memnet_np.ntm.addressing import (COSINE_EPS, SHARPEN_FLOOR, softmax, softmax_backward, sigmoid, outer_sum,
                                      softplus, ContentCache, content_forward, content_backward, InterpolateCache,
                                      interpolate_forward, interpolate_backward, shift_index, ShiftCache, shift_forward,
                                      shift_backward, SharpenCache, sharpen_forward, sharpen_backward, ReadCache,
                                      read_forward, read_backward, EraseCache, erase_forward, erase_backward, AddCache,
                                      add_forward, add_backward, address)
from memnet_np.ntm.config import (CONTROLLERS, MEMORY_INITS, TASKS, REPEATS, Config, TUNED, TASK_TUNED, TASK_SEQUENCES,
                                  replace, head_layout, param_shapes, param_names, init_params, _check_params, Batch,
                                  TASK_FUNCTIONS, task_batch, make_batch, example_batch, _check_batch)
from memnet_np.ntm.model import (Heads, HeadsCache, heads_forward, heads_backward, StepCache, step_forward,
                                 step_backward, Cache, initial_state, steps_to_run, forward, backward, LN2,
                                 bit_cross_entropy, metrics, weightings_of, loss_and_grads, predict, forward_naive)
from memnet_np.ntm.training import (evaluation_set, evaluate, make_optimizer, clip_gradients, train_task,
                                    test_report, _train_steps_per_second, bench, format_bench, GENERALISATION, results,
                                    train_command, CLI_SETTINGS, OWN_CLI_OPTIONS, FIGURE_SEQUENCES, figures)
