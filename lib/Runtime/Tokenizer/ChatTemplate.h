//===- ChatTemplate.h - built-in chat templates -----------------*- C++ -*-===//
//
// No Jinja engine: the family of tokenizer_config.json's chat_template is
// recognised by its marker tokens and the conversation is rendered by a
// built-in C++ equivalent of that family's template.
//
//===----------------------------------------------------------------------===//

#ifndef KT_LIB_RUNTIME_TOKENIZER_CHATTEMPLATE_H
#define KT_LIB_RUNTIME_TOKENIZER_CHATTEMPLATE_H

#include "kt/Runtime/Tokenizer.h"

#include <string>
#include <vector>

namespace kt::tok {

/// The families renderChat knows, as listed in error messages.
inline constexpr const char *kChatFamilies =
    "chatml (<|im_start|>), deepseek (<｜User｜>), llama3 "
    "(<|start_header_id|>), mistral ([INST])";

/// "chatml", "deepseek", "llama3", "mistral" or "" for a template text.
std::string detectChatFamily(const std::string &chatTemplate);

struct ChatSettings {
  std::string family;
  std::string templateText;
  std::string bosToken, eosToken;
};

Result<std::string> renderChat(const ChatSettings &settings,
                               const std::vector<ChatMessage> &messages,
                               bool addGenerationPrompt);

} // namespace kt::tok

#endif // KT_LIB_RUNTIME_TOKENIZER_CHATTEMPLATE_H
